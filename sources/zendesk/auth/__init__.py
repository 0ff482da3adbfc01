"""Authentication: the credential kinds and the OAuth tokens they renew.

- `credentials`: the credential specs dlt resolves (API token, OAuth token, refresh
  token, client credentials), `ZendeskCredentials`;
- `tokens`: bearer auths that renew their access token, and the token endpoint;
- `token_store` and `token_store_pg`: where rotated tokens live between runs (a JSON file,
  a Postgres table); `stores.open_token_store` picks one by its location;
- `authorize`: the `authorize` command, a browser sign-in that stores the first pair.

Above `api` (the token endpoint shares its User-Agent and connection errors).
"""
