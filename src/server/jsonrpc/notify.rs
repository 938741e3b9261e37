//! JSON-RPC notifications are requests too: the spec says the server runs them and only withholds the answer.
//! jsonrpsee 0.26 answers nothing but also runs nothing, so this middleware runs each notification (alone or
//! inside a batch) as a call whose response is dropped.
//!
//! Must never: answer a notification, or change how calls with an id are handled.

use std::future::Future;

use jsonrpsee::core::middleware::{Batch, BatchEntry, Notification, RpcServiceT};
use jsonrpsee::server::MethodResponse;
use jsonrpsee::types::{Id, Request};

/// Wraps the jsonrpsee RPC service with [`RunNotifications`].
#[derive(Debug, Clone, Copy)]
pub(super) struct RunNotificationsLayer;

impl<S> tower::Layer<S> for RunNotificationsLayer {
    type Service = RunNotifications<S>;

    fn layer(&self, inner: S) -> RunNotifications<S> {
        RunNotifications(inner)
    }
}

#[derive(Debug, Clone)]
pub(super) struct RunNotifications<S>(S);

async fn run<S>(service: &S, n: Notification<'_>)
where
    S: RpcServiceT<MethodResponse = MethodResponse> + ?Sized,
{
    let mut request = Request::owned(n.method.into_owned(), n.params.map(|p| p.into_owned()), Id::Null);
    request.extensions = n.extensions;
    // The response is the notification's answer, which the spec forbids sending.
    let _ = service.call(request).await;
}

impl<S> RpcServiceT for RunNotifications<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            NotificationResponse = MethodResponse,
            BatchResponse = MethodResponse,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.0.call(request)
    }

    fn notification<'a>(&self, n: Notification<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let service = self.0.clone();
        async move {
            run(&service, n).await;
            MethodResponse::notification()
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let service = self.0.clone();
        async move {
            let mut calls = Vec::new();
            let mut notified = false;
            for entry in batch {
                match entry {
                    Ok(BatchEntry::Notification(n)) => {
                        notified = true;
                        run(&service, n).await;
                    }
                    other => calls.push(other),
                }
            }
            // Only notifications: the batch gets no answer at all, as for a lone notification.
            if calls.is_empty() && notified {
                return MethodResponse::notification();
            }
            service.batch(Batch::from(calls)).await
        }
    }
}
