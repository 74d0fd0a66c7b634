//! The in-process transport of the embedded deployment (`docket up`): the same subjects, headers
//! and bytes as over NATS, through the same decode/encode/error path, without a network.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;
use futures_util::future::BoxFuture;

use crate::audit::AuditAnswer;
use crate::catalogue::{Endpoint, Service};
use crate::codec::CommandReply;
use crate::error::BusError;
use crate::headers::Headers;
use crate::token::TokenVerifier;
use crate::transport::{dispatch, BusRequest, Handler, QueryRequest, RawReply, Transport};

/// [`Handler`] behind a pointer, so one map holds every service's handler.
trait DynHandler: Send + Sync {
    fn handle_boxed(&self, request: BusRequest) -> BoxFuture<'_, Result<CommandReply, BusError>>;
    fn query_boxed(&self, request: QueryRequest) -> BoxFuture<'_, Result<AuditAnswer, BusError>>;
    fn actors_dyn(&self) -> &TokenVerifier;
}

impl<H: Handler> DynHandler for H {
    fn handle_boxed(&self, request: BusRequest) -> BoxFuture<'_, Result<CommandReply, BusError>> {
        Box::pin(self.handle(request))
    }

    fn query_boxed(&self, request: QueryRequest) -> BoxFuture<'_, Result<AuditAnswer, BusError>> {
        Box::pin(self.query(request))
    }

    fn actors_dyn(&self) -> &TokenVerifier {
        self.actors()
    }
}

/// Services registered in this process, reachable by subject. Cloning shares the registry.
///
/// A request runs on the caller's task; many callers run concurrently.
#[derive(Clone, Default)]
pub struct LocalBus {
    handlers: Arc<RwLock<HashMap<Service, Arc<dyn DynHandler>>>>,
}

impl LocalBus {
    /// An empty bus.
    pub fn new() -> Self {
        LocalBus::default()
    }

    /// Serves `service`'s commands (or queries) with `handler`, replacing an earlier handler.
    pub fn register<H: Handler>(&self, service: Service, handler: H) {
        self.handlers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(service, Arc::new(handler));
    }

    /// Stops serving `service`; its commands are then `unavailable`, as over NATS when no
    /// instance runs. Requests already running finish. True if it was registered.
    pub fn unregister(&self, service: Service) -> bool {
        self.handlers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&service)
            .is_some()
    }

    /// The services registered.
    pub fn services(&self) -> Vec<Service> {
        let mut services: Vec<Service> = self
            .handlers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        services.sort();
        services
    }

    fn handler(&self, service: Service) -> Option<Arc<dyn DynHandler>> {
        self.handlers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&service)
            .cloned()
    }
}

impl fmt::Debug for LocalBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalBus")
            .field("services", &self.services())
            .finish()
    }
}

impl Transport for LocalBus {
    async fn request(
        &self,
        subject: &str,
        headers: Headers,
        body: Bytes,
    ) -> Result<RawReply, BusError> {
        let Some(endpoint) = Endpoint::parse(subject) else {
            return Err(BusError::unknown_command(subject));
        };
        let Some(handler) = self.handler(endpoint.service()) else {
            return Err(BusError::no_responders(subject));
        };
        Ok(dispatch(
            endpoint,
            &headers,
            &body,
            handler.actors_dyn(),
            |request| handler.handle_boxed(request),
            |request| handler.query_boxed(request),
        )
        .await)
    }
}
