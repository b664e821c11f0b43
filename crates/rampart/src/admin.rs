//! Account administration (API.md §4, role `admin`; the HTTP layer checks the role): list
//! accounts and the security event log, change an account's role or deactivate it.
//!
//! - Deactivation revokes every session of the account at once (the next request of any
//!   of its tokens is refused) and records `user_deactivated`; a role change records
//!   `role_changed`. Setting what is already set records nothing.
//! - An admin cannot deactivate or demote themselves, so the last admin cannot lock
//!   everyone out by accident.

use anyhow::Context as _;
use serde_json::json;
use uuid::Uuid;

use crate::{
    domain::{
        paging::{PageOf, PageRequest},
        product::SearchText,
        user::{Role, User},
    },
    security_events::{EventContext, EventKind, SecurityEvents},
    store::{self, Db},
};

/// A security event as the log holds it.
pub use crate::store::events::EventRow;

/// The administration service.
#[derive(Debug, Clone)]
pub struct Administration {
    db: Db,
    events: SecurityEvents,
}

/// A change of one account; `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountChange {
    /// The new role.
    pub role: Option<Role>,
    /// Whether the account may sign in.
    pub active: Option<bool>,
}

/// What became of an [`AccountChange`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// Changed: the account as it is now.
    Changed(User),
    /// No such account.
    NotFound,
    /// The admin tried to deactivate or demote themselves: nothing changed.
    SelfLockout,
}

/// Which security events to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events of this kind.
    pub kind: Option<EventKind>,
    /// Only events concerning this account.
    pub user_id: Option<Uuid>,
}

impl Administration {
    /// Accounts in `db`, changes recorded in `events`.
    pub fn new(db: Db, events: SecurityEvents) -> Self {
        Self { db, events }
    }

    /// One page of the accounts whose email or name contains `q` (literally), oldest first.
    pub async fn users(
        &self,
        q: Option<&SearchText>,
        paging: PageRequest,
    ) -> anyhow::Result<PageOf<User>> {
        let q = q.map(SearchText::as_str);
        let found = store::users::list(&self.db, q, paging.page, paging.limit)
            .await
            .context("database")?;
        Ok(PageOf::new(paging, found))
    }

    /// One page of the security event log, newest first.
    pub async fn events(
        &self,
        filter: EventFilter,
        paging: PageRequest,
    ) -> anyhow::Result<PageOf<EventRow>> {
        let kind = filter.kind.map(EventKind::as_str);
        let found = store::events::list(&self.db, kind, filter.user_id, paging.page, paging.limit)
            .await
            .context("database")?;
        Ok(PageOf::new(paging, found))
    }

    /// Apply `change` to account `id` on behalf of `admin`, at `now`.
    pub async fn change_account(
        &self,
        admin: &User,
        id: Uuid,
        change: AccountChange,
        ctx: &EventContext,
        now: i64,
    ) -> anyhow::Result<ChangeOutcome> {
        let Some(before) = store::users::get(&self.db, id).await.context("database")? else {
            return Ok(ChangeOutcome::NotFound);
        };
        if id == admin.id && (change.active == Some(false) || change.role == Some(Role::User)) {
            return Ok(ChangeOutcome::SelfLockout);
        }
        store::users::update_admin(&self.db, id, change.role, change.active, now)
            .await
            .context("database")?;
        if change.active == Some(false) && before.active {
            let revoked = store::sessions::revoke_all(&self.db, id, None, now)
                .await
                .context("database")?;
            self.events
                .record(
                    ctx,
                    EventKind::UserDeactivated,
                    Some(id),
                    json!({"by": admin.id, "sessions_revoked": revoked}),
                )
                .await;
        }
        if let Some(role) = change.role
            && role != before.role
        {
            self.events
                .record(
                    ctx,
                    EventKind::RoleChanged,
                    Some(id),
                    json!({"by": admin.id, "from": before.role.as_str(), "to": role.as_str()}),
                )
                .await;
        }
        Ok(
            match store::users::get(&self.db, id).await.context("database")? {
                Some(after) => ChangeOutcome::Changed(after),
                None => ChangeOutcome::NotFound,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commerce::testing;

    const NOW: i64 = 1_800_000_000_000;

    fn service(f: &testing::Fixture) -> Administration {
        Administration::new(f.db.clone(), f.events.clone())
    }

    #[tokio::test]
    async fn deactivation_revokes_every_session_and_is_recorded_once() {
        let f = testing::fixture().await;
        let admin = f.user(Role::Admin).await;
        let alice = f.user(Role::User).await;
        let family = f.session(&alice, NOW).await;
        let off = AccountChange {
            active: Some(false),
            ..AccountChange::default()
        };
        let ctx = EventContext::default();
        for _ in 0..2 {
            let outcome = service(&f)
                .change_account(&admin, alice.id, off, &ctx, NOW + 1)
                .await
                .unwrap();
            let ChangeOutcome::Changed(after) = outcome else {
                panic!("{outcome:?}")
            };
            assert!(!after.active);
        }
        assert!(f.session_revoked(&alice, family).await);
        assert_eq!(f.events_of("user_deactivated", alice.id).await, 1);
    }

    #[tokio::test]
    async fn a_role_change_is_recorded_and_an_admin_cannot_lock_themselves_out() {
        let f = testing::fixture().await;
        let admin = f.user(Role::Admin).await;
        let alice = f.user(Role::User).await;
        let ctx = EventContext::default();
        let promote = AccountChange {
            role: Some(Role::Admin),
            ..AccountChange::default()
        };
        let outcome = service(&f)
            .change_account(&admin, alice.id, promote, &ctx, NOW)
            .await
            .unwrap();
        assert!(matches!(outcome, ChangeOutcome::Changed(ref u) if u.role == Role::Admin));
        assert_eq!(f.events_of("role_changed", alice.id).await, 1);
        for own in [
            AccountChange {
                role: Some(Role::User),
                ..AccountChange::default()
            },
            AccountChange {
                active: Some(false),
                ..AccountChange::default()
            },
        ] {
            let outcome = service(&f)
                .change_account(&admin, admin.id, own, &ctx, NOW)
                .await
                .unwrap();
            assert_eq!(outcome, ChangeOutcome::SelfLockout);
        }
        let unknown = service(&f)
            .change_account(&admin, Uuid::new_v4(), promote, &ctx, NOW)
            .await
            .unwrap();
        assert_eq!(unknown, ChangeOutcome::NotFound);
        let me = store::users::get(&f.db, admin.id).await.unwrap().unwrap();
        assert!(me.active && me.role == Role::Admin);
    }

    #[tokio::test]
    async fn accounts_and_events_are_listed_page_by_page_with_filters() {
        let f = testing::fixture().await;
        let admin = f.user(Role::Admin).await;
        let alice = f.user(Role::User).await;
        let ctx = EventContext::default();
        let promote = AccountChange {
            role: Some(Role::Admin),
            ..AccountChange::default()
        };
        service(&f)
            .change_account(&admin, alice.id, promote, &ctx, NOW)
            .await
            .unwrap();
        let first = PageRequest::parse([("limit", "1")]).unwrap();
        let users = service(&f).users(None, first).await.unwrap();
        assert_eq!((users.items.len(), users.total), (1, 2));
        let q = SearchText::parse(&alice.email[..10]).unwrap();
        let found = service(&f).users(Some(&q), first).await.unwrap();
        assert_eq!(found.items[0].id, alice.id);
        let wildcard = SearchText::parse("%").unwrap();
        let none = service(&f).users(Some(&wildcard), first).await.unwrap();
        assert_eq!(none.total, 0, "% is data");
        let filter = EventFilter {
            kind: Some(EventKind::RoleChanged),
            user_id: Some(alice.id),
        };
        let events = service(&f).events(filter, first).await.unwrap();
        assert_eq!(
            (events.total, events.items[0].kind.as_str()),
            (1, "role_changed")
        );
        let other = EventFilter {
            kind: Some(EventKind::UserDeactivated),
            ..EventFilter::default()
        };
        assert_eq!(service(&f).events(other, first).await.unwrap().total, 0);
    }
}
