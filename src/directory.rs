//! The tenants as the running server sees them: the store, plus an in-memory
//! index by app key so that every widget socket and phone call does not need
//! a database read. All tenant changes go through here to keep both in step.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use crate::store::{Store, StoreError};
use crate::tenants::{NewSecret, NewTenant, Tenant, TenantError, hash_secret};

/// How often a secret's last use is written down, at most.
const LAST_USE_EVERY_MS: i64 = 60_000;

pub struct Directory {
    /// `None` once closed: the server closes the database when it stops,
    /// even while a worker thread still holds a reference to the directory.
    store: RwLock<Option<Store>>,
    by_app_key: RwLock<HashMap<String, Arc<Tenant>>>,
    /// Tenants by the hash of each of their API secrets.
    by_secret: RwLock<HashMap<String, Arc<Tenant>>>,
    /// Held across each read-change-write of tenants and the reload of the
    /// indexes after it, so that two changes at once (an admin's rotation
    /// and a secret's last-use note) cannot undo each other, and no older
    /// index replaces a newer one.
    writing: Mutex<()>,
}

impl Directory {
    pub fn new(store: Store) -> Result<Self, StoreError> {
        let directory = Self {
            store: RwLock::new(Some(store)),
            by_app_key: RwLock::default(),
            by_secret: RwLock::default(),
            writing: Mutex::default(),
        };
        directory.reload()?;
        Ok(directory)
    }

    /// Runs `f` on the open store.
    pub fn with_store<T>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let guard = self.store.read().unwrap_or_else(|p| p.into_inner());
        f(guard.as_ref().ok_or(StoreError::Closed)?)
    }

    /// Closes the database; later calls fail with `StoreError::Closed`.
    pub fn close(&self) {
        self.store.write().unwrap_or_else(|p| p.into_inner()).take();
    }

    fn reload(&self) -> Result<(), StoreError> {
        let tenants: Vec<Arc<Tenant>> = self.list()?.into_iter().map(Arc::new).collect();
        let by_app_key = tenants
            .iter()
            .flat_map(|t| {
                let previous = t.previous_app_keys.iter().map(|k| k.app_key.clone());
                std::iter::once(t.app_key.clone()).chain(previous).map(move |k| (k, t.clone()))
            })
            .collect();
        let by_secret = tenants
            .iter()
            .flat_map(|t| t.secrets.iter().map(move |s| (s.hash.clone(), t.clone())))
            .collect();
        *self.by_app_key.write().unwrap_or_else(|p| p.into_inner()) = by_app_key;
        *self.by_secret.write().unwrap_or_else(|p| p.into_inner()) = by_secret;
        Ok(())
    }

    /// The enabled tenant with this app key, current or within the overlap
    /// window of a rotation.
    pub fn by_app_key(&self, app_key: &str) -> Option<Arc<Tenant>> {
        let now = crate::protocol::now_ms();
        let index = self.by_app_key.read().unwrap_or_else(|p| p.into_inner());
        index
            .get(app_key)
            .filter(|t| t.enabled && t.app_keys_at(now).any(|k| k == app_key))
            .cloned()
    }

    /// The enabled tenant that an API secret belongs to, with the secret's id,
    /// if the secret is current or within its grace period.
    pub fn by_secret(&self, secret: &str, now: i64) -> Option<(Arc<Tenant>, String)> {
        // The map is keyed by SHA-256 of the secret: how long a lookup takes
        // can only tell an attacker about hashes of values they chose.
        let hash = hash_secret(secret);
        let index = self.by_secret.read().unwrap_or_else(|p| p.into_inner());
        let tenant = index.get(&hash).filter(|t| t.enabled)?;
        let record = tenant.secrets.iter().find(|s| s.accepts(&hash, now))?;
        Some((tenant.clone(), record.id.clone()))
    }

    pub fn list(&self) -> Result<Vec<Tenant>, StoreError> {
        self.with_store(Store::tenants)
    }

    fn writing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writing.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn create(&self, new: NewTenant) -> Result<(Tenant, NewSecret), StoreError> {
        let (tenant, secret) = new.build()?;
        let _writing = self.writing();
        self.with_store(|s| s.insert_tenant(&tenant))?;
        self.reload()?;
        Ok((tenant, secret))
    }

    /// Finds a tenant by id, app key or exact name.
    pub fn find(&self, key: &str) -> Result<Tenant, StoreError> {
        self.list()?
            .into_iter()
            .find(|t| t.id == key || t.app_key == key || t.name == key)
            .ok_or_else(|| TenantError::NotFound(key.to_owned()).into())
    }

    /// Removes a tenant and its indexes.
    pub fn delete(&self, key: &str) -> Result<Tenant, StoreError> {
        let _writing = self.writing();
        let tenant = self.find(key)?;
        self.with_store(|s| s.delete_tenant(&tenant))?;
        self.reload()?;
        Ok(tenant)
    }

    /// Notes that a secret was used; writes it down at most once a minute so
    /// that busy backends do not cause a database write per call.
    pub fn touch_secret(&self, tenant: &Tenant, secret_id: &str, now: i64) {
        let stale = tenant
            .secrets
            .iter()
            .find(|s| s.id == secret_id)
            .is_some_and(|s| s.last_used_at.is_none_or(|at| now - at >= LAST_USE_EVERY_MS));
        if !stale {
            return;
        }
        let written = self.update(&tenant.id, |t| {
            if let Some(record) = t.secrets.iter_mut().find(|s| s.id == secret_id) {
                record.last_used_at = Some(now);
            }
        });
        if let Err(e) = written {
            tracing::warn!(error = %e, tenant = %tenant.id, "secret use not recorded");
        }
    }

    /// Applies a change to one tenant and writes it back.
    pub fn update<T>(
        &self,
        key: &str,
        change: impl FnOnce(&mut Tenant) -> T,
    ) -> Result<(Tenant, T), StoreError> {
        let _writing = self.writing();
        let mut tenant = self.find(key)?;
        let result = change(&mut tenant);
        let taken = self
            .list()?
            .iter()
            .any(|t| t.id != tenant.id && t.name.to_lowercase() == tenant.name.to_lowercase());
        if taken {
            return Err(TenantError::NameTaken(tenant.name.clone()).into());
        }
        self.with_store(|s| s.put_tenant(&tenant))?;
        self.reload()?;
        Ok((tenant, result))
    }
}
