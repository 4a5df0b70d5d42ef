//! How many connections the process can hold. The open-file limit is raised
//! to its hard limit at start, then divided: the gateway's own files (the
//! store, its listener, logs) keep a reserve, backends get their budget of
//! connections, and clients get the rest, so that no flood of clients or
//! backend streams leaves the store or a health check without a descriptor.

/// Descriptors kept for the gateway itself: the store's pool and files, the
/// listener, standard streams, and what libraries open.
const RESERVED_FILES: u64 = 128;
/// Idle connections kept open per backend host between calls.
pub const IDLE_CONNECTIONS_PER_HOST: usize = 32;
/// actix-web's own bound on connections per worker.
const MAX_CLIENT_CONNECTIONS_PER_WORKER: usize = 25_000;

/// The open-file limit of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft open-file limit to the hard one; returns the limits from
/// before and after, or None where they cannot be read.
pub fn raise_open_file_limit() -> Option<(OpenFiles, OpenFiles)> {
    #[cfg(unix)]
    {
        use rlimit::Resource;
        let read = || {
            rlimit::getrlimit(Resource::NOFILE)
                .ok()
                .map(|(soft, hard)| OpenFiles { soft, hard })
        };
        let before = read()?;
        if let Err(error) = rlimit::increase_nofile_limit(before.hard) {
            tracing::warn!(%error, "could not raise the open-file limit");
        }
        Some((before, read()?))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// How the open files are shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionPlan {
    /// Backend connections (exchanges and streams) across the gateway.
    pub backend_connections: usize,
    /// Client connections each HTTP worker accepts; more wait in the
    /// listen backlog until one closes.
    pub client_connections_per_worker: usize,
}

impl ConnectionPlan {
    /// The plan for `open_files` descriptors (unknown: no bound of ours),
    /// `wanted_backend` backend connections at most, `servers` backends and
    /// `workers` HTTP workers. Backends get at most half of what is left
    /// after the reserve, clients the rest.
    pub fn new(
        open_files: Option<u64>,
        wanted_backend: usize,
        servers: usize,
        workers: usize,
    ) -> Self {
        let Some(open_files) = open_files else {
            return ConnectionPlan {
                backend_connections: wanted_backend,
                client_connections_per_worker: MAX_CLIENT_CONNECTIONS_PER_WORKER,
            };
        };
        let idle = (servers * IDLE_CONNECTIONS_PER_HOST) as u64;
        let available =
            usize::try_from(open_files.saturating_sub(RESERVED_FILES + idle)).unwrap_or(usize::MAX);
        let backend_connections = wanted_backend.min(available / 2).max(2);
        let clients = available.saturating_sub(backend_connections);
        ConnectionPlan {
            backend_connections,
            client_connections_per_worker: (clients / workers.max(1))
                .clamp(1, MAX_CLIENT_CONNECTIONS_PER_WORKER),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_limit_is_shared_between_backends_and_clients_with_a_reserve() {
        let plan = ConnectionPlan::new(Some(1024), 1024, 2, 2);
        // 1024 - 128 reserved - 64 idle = 832: 416 for backends, 416 for clients.
        assert_eq!(
            plan,
            ConnectionPlan {
                backend_connections: 416,
                client_connections_per_worker: 208,
            }
        );
    }

    #[test]
    fn a_high_limit_keeps_the_configured_budget_and_actix_bound() {
        let plan = ConnectionPlan::new(Some(1 << 20), 1024, 5, 2);
        assert_eq!(plan.backend_connections, 1024);
        assert_eq!(plan.client_connections_per_worker, 25_000);
        let unknown = ConnectionPlan::new(None, 300, 5, 2);
        assert_eq!(unknown.backend_connections, 300);
    }
}
