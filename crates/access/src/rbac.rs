//! Roles, resources, actions, and what each admin may do.
//!
//! An admin's permissions are their role's defaults, overridden per
//! resource by `admin_users.permissions`:
//!
//! - `null` (or an empty array): the role's defaults, nothing else. For
//!   `super_admin` that is everything; for the other roles it is not.
//! - an array of `{"resource": "<resource>", "actions": ["<action>", ...]}`:
//!   each entry *replaces* the role's grants on the resource it names, so it
//!   can add actions (`moderator` + `errors: [update]`) or take them away
//!   (`admin` + `audit_logs: []`). `"resource": "*"` names every resource
//!   the array does not name explicitly. `manage` implies every action.
//!
//! Stored permissions that cannot be read (an unknown resource or action, a
//! different shape) grant nothing rather than the role's defaults: the entry
//! may have been meant to restrict.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

macro_rules! names {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        $vis enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names! {
    /// An admin's role, as stored in `admin_users.role`.
    pub enum Role {
        SuperAdmin = "super_admin",
        Admin = "admin",
        Moderator = "moderator",
        User = "user",
    }
}

names! {
    /// What a permission is about.
    pub enum Resource {
        Deals = "deals",
        Destinations = "destinations",
        Emails = "emails",
        Suggestions = "suggestions",
        Experiments = "experiments",
        Flags = "flags",
        Models = "models",
        Analytics = "analytics",
        Errors = "errors",
        System = "system",
        AuditLogs = "audit_logs",
        Users = "users",
        Privacy = "privacy",
    }
}

names! {
    /// What may be done to a resource. `Manage` implies all the others.
    pub enum Action {
        Create = "create",
        Read = "read",
        Update = "update",
        Delete = "delete",
        Export = "export",
        Manage = "manage",
    }
}

/// A set of actions on one resource (`Manage` expanded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Actions(u8);

impl Actions {
    pub const NONE: Actions = Actions(0);
    pub const EVERY: Actions = Actions(0b1_1111);

    const fn bit(action: Action) -> u8 {
        match action {
            Action::Create => 1,
            Action::Read => 1 << 1,
            Action::Update => 1 << 2,
            Action::Delete => 1 << 3,
            Action::Export => 1 << 4,
            Action::Manage => 0b1_1111,
        }
    }

    pub const fn of(actions: &[Action]) -> Actions {
        let mut bits = 0;
        let mut i = 0;
        while i < actions.len() {
            bits |= Self::bit(actions[i]);
            i += 1;
        }
        Actions(bits)
    }

    pub const fn allows(self, action: Action) -> bool {
        let needed = Self::bit(action);
        self.0 & needed == needed
    }

    pub const fn is_subset_of(self, other: Actions) -> bool {
        self.0 & !other.0 == 0
    }

    /// The actions in this set, `manage` standing for all of them.
    pub fn names(self) -> Vec<Action> {
        if self == Self::EVERY {
            return vec![Action::Manage];
        }
        Action::ALL
            .iter()
            .copied()
            .filter(|a| *a != Action::Manage && self.allows(*a))
            .collect()
    }
}

use Action::{Create, Delete, Export, Read, Update};
const CRUD: Actions = Actions::of(&[Create, Read, Update, Delete]);
const READ: Actions = Actions::of(&[Read]);
const READ_UPDATE: Actions = Actions::of(&[Read, Update]);
const READ_EXPORT: Actions = Actions::of(&[Read, Export]);

impl Role {
    /// The role's default grants: the existing application's, so an admin
    /// can do here what they could do there.
    ///
    /// - `super_admin`: every action on every resource.
    /// - `admin`: read, update, export on users; full CRUD on deals,
    ///   destinations, experiments (and flags, which are the same
    ///   `feature_flags` rows); read, export on analytics; create, read,
    ///   update on emails; read on system and audit logs.
    /// - `moderator`: read on users and analytics; read, update on deals and
    ///   destinations.
    /// - `user`: nothing.
    ///
    /// Resources the application never had (errors, models, suggestions,
    /// privacy) are `super_admin`'s until granted through overrides:
    /// `privacy` erases visitors' data, which nobody else should do by
    /// default.
    pub fn defaults(self, resource: Resource) -> Actions {
        use Resource::*;
        match (self, resource) {
            (Role::SuperAdmin, _) => Actions::EVERY,
            (Role::Admin, Users) => Actions::of(&[Read, Update, Export]),
            (Role::Admin, Deals | Destinations | Experiments | Flags) => CRUD,
            (Role::Admin, Analytics) => READ_EXPORT,
            (Role::Admin, Emails) => Actions::of(&[Create, Read, Update]),
            (Role::Admin, System | AuditLogs) => READ,
            (Role::Moderator, Users | Analytics) => READ,
            (Role::Moderator, Deals | Destinations) => READ_UPDATE,
            _ => Actions::NONE,
        }
    }
}

/// One entry of `admin_users.permissions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// A resource name, or `*` for every resource not named by another entry.
    #[schema(example = "errors")]
    pub resource: String,
    pub actions: Vec<Action>,
}

/// Why stored or submitted permissions were not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPermissions {
    /// Path of the offending part, e.g. `permissions[1].resource`.
    pub field: String,
    pub message: String,
}

/// Parses `admin_users.permissions` (or a request's `permissions` field).
/// `null` means no overrides.
pub fn parse_overrides(value: &Value) -> Result<Vec<Override>, InvalidPermissions> {
    if value.is_null() {
        return Ok(Vec::new());
    }
    let Value::Array(entries) = value else {
        return Err(InvalidPermissions {
            field: "permissions".into(),
            message: "must be null or an array of {resource, actions}".into(),
        });
    };
    let mut out = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let parsed: Override =
            serde_json::from_value(entry.clone()).map_err(|e| InvalidPermissions {
                field: format!("permissions[{i}]"),
                message: format!("{e}; actions are {}", list(Action::ALL)),
            })?;
        if parsed.resource != "*" && Resource::parse(&parsed.resource).is_none() {
            return Err(InvalidPermissions {
                field: format!("permissions[{i}].resource"),
                message: format!("unknown resource; known: *, {}", list(Resource::ALL)),
            });
        }
        if out.iter().any(|o: &Override| o.resource == parsed.resource) {
            return Err(InvalidPermissions {
                field: format!("permissions[{i}].resource"),
                message: format!("{} is named twice", parsed.resource),
            });
        }
        out.push(parsed);
    }
    Ok(out)
}

/// Parses a request's `permissions` into the canonical form that is stored:
/// every action of an entry at most once (a 400 otherwise, naming the
/// entry's `actions`), in a fixed order, `manage` standing alone for all of
/// them. With each resource named at most once, a stored override is never
/// longer than one entry per resource plus `*`: a request cannot bloat the
/// row, nor the audit trail that records it.
pub fn parse_submitted(value: &Value) -> Result<Vec<Override>, InvalidPermissions> {
    let overrides = parse_overrides(value)?;
    overrides
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let mut seen = Vec::with_capacity(entry.actions.len());
            for action in &entry.actions {
                if seen.contains(action) {
                    return Err(InvalidPermissions {
                        field: format!("permissions[{i}].actions"),
                        message: format!("{action} is listed twice; list each action once"),
                    });
                }
                seen.push(*action);
            }
            Ok(Override {
                resource: entry.resource,
                actions: Actions::of(&entry.actions).names(),
            })
        })
        .collect()
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one admin may do: every resource mapped to its allowed actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions(BTreeMap<Resource, Actions>);

impl Permissions {
    pub fn none() -> Self {
        Self(Resource::ALL.iter().map(|r| (*r, Actions::NONE)).collect())
    }

    /// The role's defaults with `overrides` applied.
    pub fn effective(role: Role, overrides: &[Override]) -> Self {
        let wildcard = overrides
            .iter()
            .find(|o| o.resource == "*")
            .map(|o| Actions::of(&o.actions));
        Self(
            Resource::ALL
                .iter()
                .map(|resource| {
                    let named = overrides
                        .iter()
                        .find(|o| o.resource == resource.as_str())
                        .map(|o| Actions::of(&o.actions));
                    let actions = named
                        .or(wildcard)
                        .unwrap_or_else(|| role.defaults(*resource));
                    (*resource, actions)
                })
                .collect(),
        )
    }

    /// As stored: unreadable overrides grant nothing.
    pub fn from_stored(role: Role, stored: Option<&Value>) -> Self {
        match stored.map(parse_overrides).unwrap_or(Ok(Vec::new())) {
            Ok(overrides) => Self::effective(role, &overrides),
            Err(problem) => {
                tracing::warn!(field = %problem.field, message = %problem.message,
                    "stored admin permissions unreadable; granting nothing");
                Self::none()
            }
        }
    }

    pub fn allows(&self, resource: Resource, action: Action) -> bool {
        self.0.get(&resource).is_some_and(|a| a.allows(action))
    }

    /// Every action on every resource: an unrestricted super_admin.
    pub fn is_everything(&self) -> bool {
        Resource::ALL
            .iter()
            .all(|r| self.allows(*r, Action::Manage))
    }

    /// Whether every grant here is also held by `other`.
    pub fn is_subset_of(&self, other: &Permissions) -> bool {
        self.0.iter().all(|(resource, actions)| {
            actions.is_subset_of(other.0.get(resource).copied().unwrap_or_default())
        })
    }

    /// Grants held here but not by `other`, as `resource:action` names.
    pub fn beyond(&self, other: &Permissions) -> Vec<String> {
        let mut out = Vec::new();
        for (resource, actions) in &self.0 {
            let theirs = other.0.get(resource).copied().unwrap_or_default();
            for action in Action::ALL.iter().filter(|a| **a != Action::Manage) {
                if actions.allows(*action) && !theirs.allows(*action) {
                    out.push(format!("{resource}:{action}"));
                }
            }
        }
        out
    }

    /// `{"deals": ["create", "read", ...], ...}`, resources with no grant
    /// left out.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .filter(|(_, a)| **a != Actions::NONE)
                .map(|(r, a)| {
                    (
                        r.as_str().to_owned(),
                        Value::from(a.names().iter().map(|n| n.as_str()).collect::<Vec<_>>()),
                    )
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn overrides(value: Value) -> Vec<Override> {
        parse_overrides(&value).expect("valid overrides")
    }

    #[test]
    fn super_admin_holds_everything_by_default() {
        let p = Permissions::effective(Role::SuperAdmin, &[]);
        for r in Resource::ALL {
            for a in Action::ALL {
                assert!(p.allows(*r, *a), "{r}:{a}");
            }
        }
    }

    #[test]
    fn admin_defaults_are_the_existing_applications() {
        let p = Permissions::effective(Role::Admin, &[]);
        assert!(p.allows(Resource::Deals, Action::Delete));
        assert!(p.allows(Resource::Experiments, Action::Create));
        assert!(p.allows(Resource::Flags, Action::Create));
        assert!(p.allows(Resource::Analytics, Action::Export));
        assert!(!p.allows(Resource::Analytics, Action::Update));
        assert!(p.allows(Resource::Emails, Action::Update));
        assert!(!p.allows(Resource::Emails, Action::Delete));
        assert!(p.allows(Resource::AuditLogs, Action::Read));
        assert!(!p.allows(Resource::AuditLogs, Action::Export));
        assert!(!p.allows(Resource::System, Action::Update));
        assert!(p.allows(Resource::Users, Action::Update));
        assert!(!p.allows(Resource::Users, Action::Create));
        assert!(!p.allows(Resource::Errors, Action::Read));
    }

    #[test]
    fn moderator_reads_and_updates_deals_and_destinations_but_creates_nothing() {
        let p = Permissions::effective(Role::Moderator, &[]);
        assert!(p.allows(Resource::Deals, Action::Update));
        assert!(p.allows(Resource::Destinations, Action::Update));
        assert!(!p.allows(Resource::Deals, Action::Create));
        assert!(!p.allows(Resource::Deals, Action::Delete));
        assert!(p.allows(Resource::Users, Action::Read));
        assert!(p.allows(Resource::Analytics, Action::Read));
        assert!(!p.allows(Resource::Emails, Action::Read));
        assert!(!p.allows(Resource::AuditLogs, Action::Read));
    }

    #[test]
    fn only_an_unoverridden_super_admin_holds_everything() {
        assert!(Permissions::effective(Role::SuperAdmin, &[]).is_everything());
        let restricted = Permissions::effective(
            Role::SuperAdmin,
            &overrides(json!([{"resource": "users", "actions": ["read"]}])),
        );
        assert!(!restricted.is_everything());
        assert!(!Permissions::effective(Role::Admin, &[]).is_everything());
    }

    #[test]
    fn user_role_holds_nothing() {
        let p = Permissions::effective(Role::User, &[]);
        assert!(Resource::ALL.iter().all(|r| !p.allows(*r, Action::Read)));
    }

    #[test]
    fn an_override_replaces_the_role_grant_on_its_resource_only() {
        let p = Permissions::effective(
            Role::Admin,
            &overrides(json!([{"resource": "audit_logs", "actions": []}])),
        );
        assert!(!p.allows(Resource::AuditLogs, Action::Read));
        assert!(p.allows(Resource::Deals, Action::Create));
    }

    #[test]
    fn manage_implies_every_action() {
        let p = Permissions::effective(
            Role::Moderator,
            &overrides(json!([{"resource": "errors", "actions": ["manage"]}])),
        );
        for a in Action::ALL {
            assert!(p.allows(Resource::Errors, *a), "{a}");
        }
    }

    #[test]
    fn the_wildcard_covers_resources_not_named_explicitly() {
        let p = Permissions::effective(
            Role::User,
            &overrides(json!([
                {"resource": "deals", "actions": []},
                {"resource": "*", "actions": ["read"]},
            ])),
        );
        assert!(p.allows(Resource::Users, Action::Read));
        assert!(!p.allows(Resource::Users, Action::Update));
        assert!(!p.allows(Resource::Deals, Action::Read));
    }

    #[test]
    fn null_permissions_are_the_role_defaults_not_everything() {
        let p = Permissions::from_stored(Role::Moderator, Some(&Value::Null));
        assert_eq!(p, Permissions::effective(Role::Moderator, &[]));
        assert!(!p.allows(Resource::Emails, Action::Read));
    }

    #[test]
    fn unreadable_stored_permissions_grant_nothing() {
        let p = Permissions::from_stored(Role::SuperAdmin, Some(&json!(["deals:read"])));
        assert_eq!(p, Permissions::none());
    }

    #[test]
    fn invalid_overrides_name_the_field() {
        let e = parse_overrides(&json!([{"resource": "deals", "actions": ["read"]},
            {"resource": "castles", "actions": ["read"]}]))
        .expect_err("unknown resource");
        assert_eq!(e.field, "permissions[1].resource");
        let e = parse_overrides(&json!([{"resource": "deals", "actions": ["fly"]}]))
            .expect_err("unknown action");
        assert_eq!(e.field, "permissions[0]");
    }

    #[test]
    fn an_unknown_resource_is_refused_naming_every_known_one() {
        let e = parse_overrides(&json!([{"resource": "castles", "actions": ["read"]}]))
            .expect_err("unknown resource");
        assert_eq!(
            e.message,
            "unknown resource; known: *, deals, destinations, emails, suggestions, experiments, \
             flags, models, analytics, errors, system, audit_logs, users, privacy"
        );
    }

    #[test]
    fn erasing_visitors_is_super_admins_alone_unless_granted() {
        for role in [Role::Admin, Role::Moderator, Role::User] {
            assert_eq!(role.defaults(Resource::Privacy), Actions::NONE, "{role}");
        }
        assert!(
            Permissions::effective(Role::SuperAdmin, &[]).allows(Resource::Privacy, Action::Delete)
        );
        let granted = Permissions::effective(
            Role::Admin,
            &[Override {
                resource: "privacy".into(),
                actions: vec![Action::Delete],
            }],
        );
        assert!(granted.allows(Resource::Privacy, Action::Delete));
    }

    #[test]
    fn an_unknown_action_is_refused_naming_every_known_one() {
        let e = parse_overrides(&json!([{"resource": "deals", "actions": ["fly"]}]))
            .expect_err("unknown action");
        assert!(
            e.message
                .ends_with("; actions are create, read, update, delete, export, manage"),
            "{}",
            e.message
        );
    }

    #[test]
    fn subset_checks_compare_every_resource() {
        let admin = Permissions::effective(Role::Admin, &[]);
        let moderator = Permissions::effective(Role::Moderator, &[]);
        assert!(moderator.is_subset_of(&admin));
        assert!(!admin.is_subset_of(&moderator));
        assert!(
            admin
                .beyond(&moderator)
                .contains(&"deals:create".to_owned())
        );
    }
}
