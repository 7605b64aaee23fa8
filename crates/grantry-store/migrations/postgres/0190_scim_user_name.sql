-- A SCIM user's userName exactly as the client sent it. A userName that looks like
-- alias@domain is the user's userPrincipalName; one without a domain (Okta and Entra may
-- map a login name) becomes the userPrincipalName userName@grantry.local, and this column
-- keeps what the client sent so it reads back unchanged.
ALTER TABLE scim_resources ADD COLUMN user_name TEXT;
