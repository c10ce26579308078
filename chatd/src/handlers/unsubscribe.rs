//! The one-click unsubscribe links of email digests (protocol.md 16.2), served by the HTTPS
//! server: `POST` turns the user's digests off; `GET` shows a page whose button posts, so a
//! link scanner fetching the URL changes nothing.

use hyper::{Method, Response, StatusCode};

use super::files::http::{Body, plain, text_answer};
use crate::outbox::unsubscribe::unsubscribe;
use crate::state::AppState;

const PAGE: &str = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Unsubscribe</title></head>\
<body><form method=\"post\"><p>Stop the email digests of missed notifications?</p>\
<button type=\"submit\">Unsubscribe</button></form></body></html>\n";

/// Answers a request to the unsubscribe path with its method and query.
pub async fn handle(state: &AppState, method: Method, query: &str) -> Response<Body> {
    let Some(links) = state.outbox.links() else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let Some(user) = links.check(query) else {
        return plain(StatusCode::FORBIDDEN, "invalid unsubscribe link\n");
    };
    if method == Method::GET || method == Method::HEAD {
        return text_answer(StatusCode::OK, "text/html; charset=utf-8", PAGE);
    }
    if method != Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match unsubscribe(state.store.as_ref(), user).await {
        Ok(()) => plain(StatusCode::OK, "You will get no more email digests.\n"),
        Err(e) => {
            tracing::warn!(user, error = %e, "cannot turn email digests off");
            plain(StatusCode::SERVICE_UNAVAILABLE, "try again later\n")
        }
    }
}
