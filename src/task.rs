//! The few async helpers the widget needs — a sleep, a timeout, both-of-two — built on
//! the browser's own timers and promises rather than a futures library (size).

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use js_sys::{Function, Promise};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use crate::error::WidgetError;

/// Resolves after `ms` milliseconds.
pub async fn sleep(ms: u32) {
    let promise = Promise::new(&mut |resolve: Function, _reject: Function| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(
                &resolve,
                i32::try_from(ms).unwrap_or(i32::MAX),
            );
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// `fut`, or [`WidgetError::Timeout`] if it takes longer than `ms`.
pub async fn timeout<T>(
    ms: u32,
    fut: impl Future<Output = Result<T, WidgetError>>,
) -> Result<T, WidgetError> {
    let mut fut = pin!(fut);
    let mut timer = pin!(sleep(ms));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = fut.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(WidgetError::Timeout)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Runs both at once; the first error ends it.
pub async fn try_join<A, B>(
    a: impl Future<Output = Result<A, WidgetError>>,
    b: impl Future<Output = Result<B, WidgetError>>,
) -> Result<(A, B), WidgetError> {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none()
            && let Poll::Ready(r) = a.as_mut().poll(cx)
        {
            match r {
                Ok(v) => ra = Some(v),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        if rb.is_none()
            && let Poll::Ready(r) = b.as_mut().poll(cx)
        {
            match r {
                Ok(v) => rb = Some(v),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        match (ra.take(), rb.take()) {
            (Some(x), Some(y)) => Poll::Ready(Ok((x, y))),
            (x, y) => {
                ra = x;
                rb = y;
                Poll::Pending
            }
        }
    })
    .await
}

/// Awaits a promise, mapping a rejection with `f`.
pub async fn promise(p: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}
