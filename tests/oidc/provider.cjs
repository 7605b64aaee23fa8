// A real OpenID provider for Grantry's integration tests: oauth2-mock-server (pinned in
// package.json beside this file) serving discovery and its JWK set over HTTP on 127.0.0.1,
// port chosen by the system. The test drives it through standard input, one JSON command
// per line, and reads one JSON answer per line:
//   {"cmd":"token","kid":K,"claims":{...},"drop":["claim"],"header":{...},"expiresIn":S}
//       -> {"token":"..."}   (signed by key K, or by the first key)
//   {"cmd":"rotate","alg":"ES256"} -> {"kid":"..."}   (a new key, published at once)
//   {"cmd":"login","claims":{...}} -> {"ok":true}   (claims merged into the tokens of every
//       later authorization-code exchange: who "signs in" at its /authorize, which asks
//       nothing and sends the browser straight back with a code)
// The first line printed is {"issuer":URL,"kid":FIRST_KID}. The provider exits when its
// standard input closes, unless it was given a port (`node provider.cjs RS256 8081`): then
// it serves until stopped, for trying Grantry by hand (see the README).
// Its own token endpoint (POST /token) works too; a form field `claims` (JSON) is merged
// into the token it issues.
'use strict';
const { OAuth2Server } = require('oauth2-mock-server');
const readline = require('node:readline');

async function main() {
  const alg = process.argv[2] || 'RS256';
  const fixedPort = process.argv[3] !== undefined ? Number(process.argv[3]) : undefined;
  const server = new OAuth2Server();
  const first = await server.issuer.keys.generate(alg);
  let loginClaims = null;
  server.service.on('beforeTokenSigning', (token, req) => {
    if (req.body && typeof req.body.claims === 'string') Object.assign(token.payload, JSON.parse(req.body.claims));
    if (req.body && req.body.grant_type === 'authorization_code' && loginClaims) Object.assign(token.payload, loginClaims);
  });
  await server.start(fixedPort || 0, '127.0.0.1');
  server.issuer.url = `http://127.0.0.1:${server.address().port}`;
  const reply = (value) => process.stdout.write(JSON.stringify(value) + '\n');
  reply({ issuer: server.issuer.url, kid: first.kid });
  if (fixedPort !== undefined) return;

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    try {
      const command = JSON.parse(line);
      if (command.cmd === 'token') {
        const token = await server.issuer.buildToken({
          kid: command.kid,
          expiresIn: command.expiresIn,
          scopesOrTransform: (header, payload) => {
            Object.assign(header, command.header || {});
            Object.assign(payload, command.claims || {});
            for (const name of command.drop || []) delete payload[name];
          },
        });
        reply({ token });
      } else if (command.cmd === 'login') {
        loginClaims = command.claims || null;
        reply({ ok: true });
      } else if (command.cmd === 'rotate') {
        const key = await server.issuer.keys.generate(command.alg || alg);
        reply({ kid: key.kid });
      } else {
        reply({ error: `unknown command ${command.cmd}` });
      }
    } catch (e) {
      reply({ error: String(e && e.message ? e.message : e) });
    }
  }
  await server.stop();
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write(`provider failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
