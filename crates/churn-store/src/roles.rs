//! The services' PostgreSQL roles (migrations V6 and V11): their passwords, set as SCRAM-SHA-256 verifiers
//! computed here, and the start-up check that a service does not connect as a superuser.
//!
//! `ALTER ROLE … PASSWORD 'SCRAM-SHA-256$…'` stores a verifier as it is, so the server never receives the
//! password: not in the statement's text, not in a log line of it, not in `pg_stat_activity`. The verifier
//! is PostgreSQL's format (RFC 5802 and 7677, as `scram_build_secret` writes it):
//! `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, each part base64.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use churn_config::{RolePassword, Secret};
use hmac::{Hmac, KeyInit, Mac};
use sha2_scram::{Digest, Sha256};
use sqlx::{Connection, PgPool};

use crate::Error;
use crate::migrate::{connect_locked, unlock};

/// The role BI tools (Grafana, Metabase) connect as; migration V6 creates it and grants it reads of the
/// dbt marts and the monitoring schema only.
pub const READONLY_ROLE: &str = "churn_readonly";

/// PBKDF2 rounds of a verifier: PostgreSQL's default (`scram_iterations`, 4096).
pub const SCRAM_ITERATIONS: u32 = 4096;

/// Bytes of random salt per verifier, as PostgreSQL draws them.
const SALT_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// The SCRAM-SHA-256 verifier PostgreSQL would store for `password` with this salt and iteration count.
///
/// The password is SASLprep-normalised first, as the server does; one that SASLprep refuses is used as
/// its raw bytes, as the server does too, so a login with it still matches.
pub fn scram_verifier(password: &str, salt: &[u8], iterations: u32) -> String {
    let prepared = stringprep::saslprep(password);
    let normalized = prepared.as_deref().unwrap_or(password).as_bytes();
    let salted = hi(normalized, salt, iterations.max(1));
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        BASE64.encode(salt),
        BASE64.encode(stored_key),
        BASE64.encode(server_key)
    )
}

/// [`scram_verifier`] with a fresh random salt and [`SCRAM_ITERATIONS`].
pub fn new_scram_verifier(password: &Secret) -> String {
    let salt: [u8; SALT_LEN] = rand::random();
    scram_verifier(password.expose(), &salt, SCRAM_ITERATIONS)
}

/// RFC 5802's Hi(): PBKDF2 with HMAC-SHA-256, one output block (the key is the hash's length).
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut mac = keyed(password);
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = mac.finalize().into_bytes().into();
    let mut result = u;
    for _ in 1..iterations {
        u = hmac(password, &u);
        for (r, b) in result.iter_mut().zip(u) {
            *r ^= b;
        }
    }
    result
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = keyed(key);
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length (longer ones are hashed first): this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"))
}

/// Sets each role's password, as a SCRAM verifier, in the database at `url` (the identity that migrates:
/// a superuser, or the schema owner with CREATEROLE that made the roles).
///
/// The migrations cannot hold passwords, so services (migrating at start) and `churnctl migrate` call this
/// after migrating. It holds the migration lock: two services starting together would otherwise update
/// a role's row at once, and PostgreSQL refuses the second ("tuple concurrently updated").
pub async fn set_role_passwords(url: &str, passwords: &[RolePassword]) -> Result<(), Error> {
    if passwords.is_empty() {
        return Ok(());
    }
    let mut conn = connect_locked(url).await?;
    let mut result = Ok(());
    for RolePassword { role, password } in passwords {
        let verifier = new_scram_verifier(password);
        let mut attempt = set_verifier(&mut conn, role.name, &verifier).await;
        // Roles belong to the server: a process migrating another database of it may update the same
        // role's row at this moment (the migration lock is per database), and the loser is told
        // "tuple concurrently updated". Its update is as good as ours, and ours follows.
        for _ in 0..3 {
            match &attempt {
                Err(e) if is_concurrent_update(e) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    attempt = set_verifier(&mut conn, role.name, &verifier).await;
                }
                _ => break,
            }
        }
        if let Err(e) = attempt {
            result = Err(Error::Migration(format!(
                "{}: could not set the password of role {} (migrations V6 and V11 must have run, and \
                 the DATABASE_URL role must be a superuser or have made the role with CREATEROLE): {e}",
                role.password_var, role.name
            )));
            break;
        }
    }
    unlock(conn).await;
    result
}

/// Whether `e` is PostgreSQL's "tuple concurrently updated" (an internal error, XX000).
fn is_concurrent_update(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| {
        d.code().as_deref() == Some("XX000") && d.message().contains("concurrently updated")
    })
}

/// `alter role <role> password '<verifier>'`, in one transaction.
async fn set_verifier(
    conn: &mut sqlx::PgConnection,
    role: &str,
    verifier: &str,
) -> Result<(), sqlx::Error> {
    // ALTER ROLE takes no parameters: the role and verifier reach it as settings of this transaction
    // only, and the server quotes them into the statement (format's %I and %L).
    let mut tx = conn.begin().await?;
    sqlx::query!(
        "select set_config('churn.role_name', $1, true) as role,
                set_config('churn.role_verifier', $2, true) as verifier",
        role,
        verifier,
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!(
        "do $$ begin
             execute format('alter role %I with password %L',
                 current_setting('churn.role_name'), current_setting('churn.role_verifier'));
         end $$"
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// The role a pool's connections log in as, and whether it is a superuser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedRole {
    pub name: String,
    pub superuser: bool,
}

/// Who the pool connects as: a service that finds itself a superuser says so at start.
pub async fn connected_role(pool: &PgPool) -> Result<ConnectedRole, Error> {
    let row = sqlx::query!(
        r#"select current_user as "name!", rolsuper as "superuser!"
           from pg_roles where rolname = current_user"#
    )
    .fetch_one(pool)
    .await?;
    Ok(ConnectedRole {
        name: row.name,
        superuser: row.superuser,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's example (user "user", password "pencil"): its salt and iteration count give its
    /// ServerSignature's key material; PostgreSQL's own verifier for these inputs is checked against the
    /// server in tests/roles.rs.
    #[test]
    fn the_verifier_has_postgresql_s_layout() {
        let salt = BASE64
            .decode("W22ZaJ0SNY7soEsUEjb6gQ==")
            .unwrap_or_default();
        let verifier = scram_verifier("pencil", &salt, 4096);
        let (head, keys) = verifier.split_once("$4096:").unwrap_or_default();
        assert_eq!(head, "SCRAM-SHA-256");
        let (salt_b64, keys) = keys.split_once('$').unwrap_or_default();
        assert_eq!(salt_b64, "W22ZaJ0SNY7soEsUEjb6gQ==");
        let (stored, server) = keys.split_once(':').unwrap_or_default();
        assert_eq!(BASE64.decode(stored).map(|k| k.len()).ok(), Some(32));
        assert_eq!(BASE64.decode(server).map(|k| k.len()).ok(), Some(32));
    }

    /// RFC 7677 section 3: with these inputs the salted password's ServerKey signs the exchange into
    /// "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".
    #[test]
    fn the_server_key_matches_rfc_7677_s_example() {
        let salt = BASE64
            .decode("W22ZaJ0SNY7soEsUEjb6gQ==")
            .unwrap_or_default();
        let salted = hi(b"pencil", &salt, 4096);
        let server_key = hmac(&salted, b"Server Key");
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let signature = hmac(&server_key, auth_message.as_bytes());
        assert_eq!(
            BASE64.encode(signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn two_verifiers_of_one_password_differ_by_their_salt() {
        let password = Secret::new("correct horse battery");
        assert_ne!(new_scram_verifier(&password), new_scram_verifier(&password));
    }
}
