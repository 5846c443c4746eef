//! Starting a gateway: the replica from the validators' genesis, the follower task, and the
//! HTTP server, on the current tokio runtime.

use crate::follower::{self, FollowerConfig};
use crate::gateway::{Gateway, GatewayConfig};
use crate::keys::{KeyError, KeyStore};
use crate::replica::Replica;
use crate::source::{BlockSource, FetchError, HttpValidator};
use bulwark_exchange::Genesis;
use bulwark_types::BlockLimits;
use commonware_cryptography::ed25519::PublicKey;
use commonware_utils::ordered::Set;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Everything a gateway needs to start.
pub struct GatewaySetup {
    /// The validators' consensus namespace.
    pub namespace: Vec<u8>,
    /// The validator set, as the validators list it.
    pub participants: Set<PublicKey>,
    /// The genesis the validators start from.
    pub genesis: Genesis,
    /// The validators' block limits (what a block may hold).
    pub limits: BlockLimits,
    /// Base URLs of validators' APIs (`http://host:port`).
    pub validators: Vec<String>,
    pub listen: SocketAddr,
    /// Where the API keys live.
    pub data_dir: PathBuf,
    pub config: GatewayConfig,
    pub follower: FollowerConfig,
}

/// Why a gateway did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("genesis is not valid: {0}")]
    Genesis(#[from] bulwark_exchange::ConfigError),
    #[error("no validators given")]
    NoValidators,
    #[error("validator client: {0}")]
    Client(#[from] FetchError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("{what}: {error}")]
    Io { what: String, error: std::io::Error },
}

/// A running gateway.
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    pub follower: tokio::task::JoinHandle<()>,
    pub server: tokio::task::JoinHandle<()>,
}

/// Starts the follower and the server; returns once the port is bound.
pub async fn start(setup: GatewaySetup) -> Result<RunningGateway, StartError> {
    if setup.validators.is_empty() {
        return Err(StartError::NoValidators);
    }
    let participants = setup.participants.len();
    let replica = Arc::new(Replica::from_genesis(
        &setup.namespace,
        setup.participants,
        &setup.genesis,
    )?);
    let clients = setup
        .validators
        .iter()
        .map(|url| {
            HttpValidator::new(
                url,
                setup.limits,
                replica.verifier(),
                participants,
                Duration::from_secs(5),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    std::fs::create_dir_all(&setup.data_dir).map_err(|error| StartError::Io {
        what: format!("creating {}", setup.data_dir.display()),
        error,
    })?;
    let keys = KeyStore::open(&setup.data_dir)?;
    let listener = tokio::net::TcpListener::bind(setup.listen)
        .await
        .map_err(|error| StartError::Io {
            what: format!("binding {}", setup.listen),
            error,
        })?;
    let addr = listener.local_addr().map_err(|error| StartError::Io {
        what: "local address".into(),
        error,
    })?;
    let sources: Vec<Box<dyn BlockSource>> = clients
        .iter()
        .cloned()
        .map(|c| Box::new(c) as Box<dyn BlockSource>)
        .collect();
    let gateway = Arc::new(Gateway::new(replica.clone(), clients, keys, setup.config));
    let follower = tokio::spawn(follower::run(replica, sources, setup.follower));
    tokio::spawn(crate::dashboard::publish(gateway.clone()));
    tokio::spawn(crate::dashboard::health::poll(
        gateway.health.clone(),
        gateway.validators.clone(),
    ));
    let server = {
        let gateway = gateway.clone();
        tokio::spawn(async move {
            if let Err(error) =
                crate::server::serve(listener, gateway, std::future::pending()).await
            {
                tracing::error!(%error, "gateway server stopped");
            }
        })
    };
    Ok(RunningGateway {
        addr,
        gateway,
        follower,
        server,
    })
}

/// Starts a gateway on a runtime of its own, on its own thread (one worker, plus tokio's
/// blocking pool for execution), so that its work never holds up another runtime's tasks: a
/// devnet runs one beside its validators in the same process. Returns the bound address once
/// it is listening; the thread runs until the process ends.
pub fn start_on_own_thread(setup: GatewaySetup) -> Result<SocketAddr, StartError> {
    let (sender, receiver) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("gateway".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("gateway-worker")
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = sender.send(Err(StartError::Io {
                        what: "starting the gateway's runtime".into(),
                        error,
                    }));
                    return;
                }
            };
            runtime.block_on(async move {
                match start(setup).await {
                    Ok(running) => {
                        let _ = sender.send(Ok(running.addr));
                        let _ = running.server.await;
                    }
                    Err(error) => {
                        let _ = sender.send(Err(error));
                    }
                }
            });
        });
    if let Err(error) = spawned {
        return Err(StartError::Io {
            what: "spawning the gateway's thread".into(),
            error,
        });
    }
    receiver.recv().unwrap_or_else(|_| {
        Err(StartError::Io {
            what: "the gateway's thread".into(),
            error: std::io::Error::other("ended before it started"),
        })
    })
}
