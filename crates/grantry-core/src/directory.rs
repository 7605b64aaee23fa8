//! Users, groups, memberships and role assignments.

use crate::auth::perms;
use crate::listing::{ListOptions, Listed};
use crate::{App, Caller};
use grantry_domain::enums::UserType;
use grantry_domain::model::User;
use grantry_domain::{Error, ErrorKind, Result, ids};
use grantry_store::query::{Field, Kind};
use grantry_store::{Value, repo};

/// Input for creating a user (already validated for shape by the wire layer).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub display_name: String,
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub mail_nickname: Option<String>,
    pub user_type: UserType,
    pub account_enabled: bool,
}

/// Directory writes by a delegated caller need an administrator role, as in Entra.
fn require_user_admin(caller: &Caller) -> Result<()> {
    use grantry_domain::model::directory_roles as dr;
    caller.require(perms::USER_WRITE)?;
    if caller.is_app()
        || caller.has_directory_role(dr::GLOBAL_ADMINISTRATOR)
        || caller.has_directory_role(dr::USER_ADMINISTRATOR)
    {
        Ok(())
    } else {
        Err(Error::forbidden("Creating or changing users needs the User Administrator or Global Administrator role."))
    }
}

pub async fn create_user(app: &App, caller: &Caller, input: NewUser) -> Result<User> {
    require_user_admin(caller)?;
    if !input.user_principal_name.contains('@') {
        return Err(Error::invalid_property(
            "userPrincipalName",
            "'userPrincipalName' must look like alias@domain, e.g. adele@contoso.com.",
        ));
    }
    let user = User {
        id: ids::new_id(),
        display_name: input.display_name,
        user_principal_name: input.user_principal_name,
        mail: input.mail,
        given_name: input.given_name,
        surname: input.surname,
        job_title: input.job_title,
        department: input.department,
        mail_nickname: input.mail_nickname,
        user_type: input.user_type,
        account_enabled: input.account_enabled,
        manager_id: None,
        external_user_state: None,
        created_date_time: app.now(),
    };
    let upn = user.user_principal_name.to_lowercase();
    let taken = {
        let upn = upn.clone();
        app.store
            .read(move |c| Ok(c.query_one("SELECT 1 FROM users WHERE upn_lower = ?", &[Value::from(upn)])?.is_some()))
            .await?
    };
    if taken {
        return Err(upn_taken(&user.user_principal_name));
    }
    let saved = user.clone();
    app.store
        .write(move |c| repo::insert(c, &saved))
        .await
        .map_err(|e| if e.kind == ErrorKind::Conflict { upn_taken(&upn) } else { e })?;
    Ok(user)
}

fn upn_taken(upn: &str) -> Error {
    Error::conflict(
        "Request_MultipleObjectsWithSameKeyValue",
        format!("Another user already has the userPrincipalName '{upn}'; choose a different one."),
    )
}

/// Resolves a user by object id or userPrincipalName.
pub async fn get_user(app: &App, caller: &Caller, id_or_upn: &str) -> Result<User> {
    if caller.user_id() != Some(id_or_upn) {
        caller.require(perms::USER_READ)?;
    }
    let key = id_or_upn.to_string();
    app.store.read(move |c| find_user(c, &key)).await?.ok_or_else(|| Error::not_found("user", id_or_upn))
}

pub fn find_user(c: &mut dyn grantry_store::Conn, id_or_upn: &str) -> Result<Option<User>> {
    if id_or_upn.contains('@') {
        repo::find_one(c, "upn_lower = ?", &[Value::from(id_or_upn.to_lowercase())])
    } else {
        repo::get(c, &ids::normalize(id_or_upn))
    }
}

/// Filterable and sortable user properties.
pub const USER_FIELDS: &[Field] = &[
    crate::listing::ID,
    Field { names: &["displayName"], sql: "display_name", kind: Kind::TextIgnoreCase },
    Field { names: &["userPrincipalName"], sql: "upn_lower", kind: Kind::TextIgnoreCase },
    Field { names: &["mail"], sql: "mail_lower", kind: Kind::TextIgnoreCase },
    Field {
        names: &["userType"],
        sql: "user_type",
        kind: Kind::Enum { normalize: |s| UserType::parse(s).map(|t| t.v1()), allowed: UserType::allowed },
    },
    Field { names: &["accountEnabled"], sql: "account_enabled", kind: Kind::Bool },
    Field { names: &["createdDateTime"], sql: "created_us", kind: Kind::Time },
    Field { names: &["manager/id"], sql: "manager_id", kind: Kind::Id },
];

pub async fn list_users(app: &App, caller: &Caller, options: ListOptions) -> Result<Listed<User>> {
    caller.require(perms::USER_READ)?;
    app.store.read(move |c| crate::listing::list(c, USER_FIELDS, Vec::new(), &options)).await
}
