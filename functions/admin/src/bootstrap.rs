//! The first admin: there is no HTTP route that creates a super_admin.
//!
//! `admin bootstrap-admin --email <email> [--force]` on the command line, or
//! a direct invoke `{"command": "bootstrap-admin", "email": ..., "force":
//! false}`, makes an existing user super_admin. It refuses while another
//! super_admin exists unless forced, and is audited like any change, with
//! the channel it came through as the recorded role.

use access::audit::{Entry, Origin, Recorder};
use access::{Action, Resource, Role};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BootstrapError {
    #[error("no user with email {0:?}; they must sign in to the site once first")]
    NoSuchUser(String),
    #[error("{0} already holds super_admin; pass --force to add another")]
    AlreadyBootstrapped(String),
    #[error("several users have email {0:?} in different cases; fix the duplicates first")]
    AmbiguousEmail(String),
    #[error("{0:?} is not an email address")]
    InvalidEmail(String),
    #[error("database: {0}")]
    Database(String),
}

impl From<tokio_postgres::Error> for BootstrapError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Database(error.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bootstrapped {
    pub user_id: String,
    pub email: String,
    /// The role the user held before (`user` without an admin grant).
    pub previous_role: String,
    pub audit_id: String,
}

/// Which channel ran the command, recorded as the audit row's role.
#[derive(Debug, Clone, Copy)]
pub enum Channel {
    Cli,
    Lambda,
}

pub async fn bootstrap_admin(
    client: &mut deadpool_postgres::Client,
    email: &str,
    force: bool,
    channel: Channel,
) -> Result<Bootstrapped, BootstrapError> {
    let email = email.trim();
    if !email.contains('@') || email.len() > 320 {
        return Err(BootstrapError::InvalidEmail(email.to_owned()));
    }
    let tx = client.transaction().await?;
    // Two bootstraps at once must not both see "no super_admin yet".
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('admin.bootstrap', 0))",
        &[],
    )
    .await?;
    let users = tx
        .query(
            r#"SELECT u."id", u."email", a."role", a."permissions" FROM "users" u
               LEFT JOIN "admin_users" a ON a."userId" = u."id"
               WHERE lower(u."email") = lower($1) LIMIT 2"#,
            &[&email],
        )
        .await?;
    let user = match users.as_slice() {
        [] => return Err(BootstrapError::NoSuchUser(email.to_owned())),
        [user] => user,
        _ => return Err(BootstrapError::AmbiguousEmail(email.to_owned())),
    };
    let user_id: String = user.get(0);
    let stored_email: Option<String> = user.get(1);
    let previous_role: Option<String> = user.get(2);
    let previous_permissions: Option<Value> = user.get(3);
    let channel_name = match channel {
        Channel::Cli => "bootstrap-admin (command line)",
        Channel::Lambda => "bootstrap-admin (direct invoke)",
    };
    let recorder = Recorder {
        user_id: user_id.clone(),
        email: stored_email.clone().unwrap_or_else(|| email.to_owned()),
        role: channel_name.to_owned(),
    };
    if !force
        && let Some(holder) = tx
            .query_opt(
                r#"SELECT "userId" FROM "admin_users" WHERE "role" = 'super_admin' LIMIT 1"#,
                &[],
            )
            .await?
    {
        let refused = BootstrapError::AlreadyBootstrapped(holder.get(0));
        tx.rollback().await?;
        Entry::refused(
            &recorder,
            &Origin::default(),
            Action::Create,
            Resource::Users,
            &user_id,
            &refused.to_string(),
        )
        .insert(&***client)
        .await?;
        return Err(refused);
    }
    let now = platform::clock::now_millis();
    tx.execute(
        r#"INSERT INTO "admin_users" ("id", "userId", "role", "permissions", "createdAt", "updatedAt")
           VALUES ($1, $2, 'super_admin', NULL, $3, $3)
           ON CONFLICT ("userId") DO UPDATE SET "role" = 'super_admin', "permissions" = NULL, "updatedAt" = $3"#,
        &[&platform::ids::new_id(), &user_id, &now],
    )
    .await?;
    let email = recorder.email.clone();
    let entry = Entry::success(
        &recorder,
        &Origin::default(),
        Action::Create,
        Resource::Users,
        user_id.clone(),
        previous_role
            .as_ref()
            .map(|role| json!({"role": role, "permissions": previous_permissions}))
            .unwrap_or(Value::Null),
        json!({"role": Role::SuperAdmin.as_str(), "permissions": null, "forced": force}),
    );
    let audit_id = entry.insert(&*tx).await?;
    tx.commit().await?;
    Ok(Bootstrapped {
        user_id,
        email,
        previous_role: previous_role.unwrap_or_else(|| Role::User.as_str().to_owned()),
        audit_id,
    })
}
