//! The registry, live: read again from its file on SIGHUP or
//! `POST /registry/reload`, validated whole, and swapped in at once. A bad
//! file keeps the registry served. Sessions keep their servers: an added
//! server can be chosen at once, a changed one's settings apply from its
//! next backend session, and a removed one's backend sessions fail to
//! open, naming it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

use super::Mux;
use crate::backend::limits::BackendLimits;
use crate::registry::{Loaded, Registry, RegistryError};

/// Where the registry is read from, and the version served.
pub struct RegistryFile {
    path: PathBuf,
    version: Mutex<RegistryVersion>,
}

/// When the registry served was read, and which version of its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryVersion {
    pub loaded_at: DateTime<Utc>,
    /// SHA-256 of the file's bytes, as hex.
    pub sha256: String,
}

/// What a reload changed, by server name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reloaded {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub version: Option<RegistryVersion>,
}

impl Mux {
    /// Serves `loaded`, read from `path`, and reloads from there.
    pub fn with_registry_file(mut self, path: &Path, loaded: &Loaded) -> Self {
        self.registry_file = Some(RegistryFile {
            path: path.to_owned(),
            version: Mutex::new(RegistryVersion {
                loaded_at: loaded.loaded_at,
                sha256: loaded.sha256.clone(),
            }),
        });
        self
    }

    /// The registry served now.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// When the registry served was read and which version of its file,
    /// when it was read from one.
    pub fn registry_version(&self) -> Option<RegistryVersion> {
        let file = self.registry_file.as_ref()?;
        Some(
            file.version
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }

    /// Reads the registry's file again and serves it, if it is valid whole;
    /// else the registry served stays, and the error says why.
    pub fn reload_registry(&self) -> Result<Reloaded, ReloadError> {
        let file = self.registry_file.as_ref().ok_or(ReloadError::NoFile)?;
        let loaded = Registry::load_versioned(&file.path).map_err(|error| {
            tracing::warn!(%error, "registry not reloaded; the one served stays");
            ReloadError::Invalid(error)
        })?;
        let old = self.registry();
        let mut reloaded = Reloaded::default();
        for server in loaded.registry.servers() {
            match old.server(&server.name) {
                None => reloaded.added.push(server.name.clone()),
                Some(before) if before != server => reloaded.changed.push(server.name.clone()),
                Some(_) => {}
            }
        }
        reloaded.removed = old
            .servers()
            .filter(|server| loaded.registry.server(&server.name).is_none())
            .map(|server| server.name.clone())
            .collect();
        {
            // Calls in progress keep the limits they hold; a changed
            // server's next calls count against its new ones.
            let mut limits = self
                .backend_limits
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let kept: HashMap<String, Arc<BackendLimits>> = loaded
                .registry
                .servers()
                .map(|server| {
                    let unchanged = !reloaded.changed.contains(&server.name);
                    let limits = match limits.get(&server.name) {
                        Some(limits) if unchanged => limits.clone(),
                        _ => Arc::new(BackendLimits::new(server, self.connections.clone())),
                    };
                    (server.name.clone(), limits)
                })
                .collect();
            *limits = kept;
        }
        *self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner) = loaded.registry.clone();
        let version = RegistryVersion {
            loaded_at: loaded.loaded_at,
            sha256: loaded.sha256,
        };
        *file.version.lock().unwrap_or_else(PoisonError::into_inner) = version.clone();
        tracing::info!(
            added = ?reloaded.added,
            changed = ?reloaded.changed,
            removed = ?reloaded.removed,
            sha256 = %version.sha256,
            "registry reloaded"
        );
        reloaded.version = Some(version);
        Ok(reloaded)
    }
}

/// Why a reload served nothing new.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("this gateway was not started from a registry file")]
    NoFile,
    #[error("{0}; the registry served is unchanged")]
    Invalid(#[source] RegistryError),
}
