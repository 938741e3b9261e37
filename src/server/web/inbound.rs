//! A visitor's message, from either transport, into the service: checked against the channel's limits, made
//! canonical (`channel = "web"`, protocol `web`, the site as account, the widget's client id as the source's id
//! and, scoped by site and visitor, as the idempotency key), stored by [`crate::service::Service::send`], and
//! handed to the bot when it is new.
//!
//! Must never: store, validate the canonical model or publish by itself (the service does), or run the bot for
//! a resend.

use protofuse_adapter::IngestOutcome;
use protofuse_model::{Content, Direction, Envelope, IdempotencyKey, Party, Protocol, Role, Source};

use super::channel::Web;
use super::error::WebError;
use super::frames::Outgoing;
use super::token::Visitor;

/// The channel name web conversations run on.
pub(super) const CHANNEL: &str = "web";

/// Stores `outgoing` from `visitor`; a resend of a stored client id is answered as a duplicate.
pub(super) async fn accept(web: &Web, visitor: &Visitor, outgoing: Outgoing) -> Result<IngestOutcome, WebError> {
    outgoing.check(web.settings.max_message_bytes)?;
    web.limits.message(visitor)?;
    let outcome = web.service.send(envelope(visitor, outgoing)).await?;
    if !outcome.duplicate {
        web.answers.spawn(outcome.message.clone());
    }
    Ok(outcome)
}

fn envelope(visitor: &Visitor, outgoing: Outgoing) -> Envelope {
    let key = IdempotencyKey::derive(
        Protocol::Web.as_str(),
        &[&visitor.site, &visitor.id, "client", &outgoing.client_id],
    );
    let mut source = Source::new(Protocol::Web);
    source.account = Some(visitor.site.clone());
    source.external_id = Some(outgoing.client_id);
    Envelope {
        // The store resolves the visitor's open conversation on this channel and site, or opens one.
        conversation_id: None,
        channel: CHANNEL.to_owned(),
        direction: Direction::Inbound,
        sender: Party {
            role: Role::Customer,
            external_id: visitor.id.clone(),
            display_name: visitor.name.clone(),
        },
        content: Content::Text { text: outgoing.text },
        sent_at: None,
        source,
        metadata: Default::default(),
        idempotency_key: key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_scoped_by_site_and_visitor() {
        let visitor = |site: &str, id: &str| Visitor {
            site: site.to_owned(),
            id: id.to_owned(),
            name: None,
        };
        let out = || Outgoing {
            client_id: "c1".to_owned(),
            text: "hi".to_owned(),
        };
        let a = envelope(&visitor("shop", "anon-1"), out());
        assert_eq!(
            a.idempotency_key,
            envelope(&visitor("shop", "anon-1"), out()).idempotency_key
        );
        assert_ne!(
            a.idempotency_key,
            envelope(&visitor("shop", "anon-2"), out()).idempotency_key
        );
        assert_ne!(
            a.idempotency_key,
            envelope(&visitor("blog", "anon-1"), out()).idempotency_key
        );
        assert!(a.validate().is_ok());
    }
}
