//! Webhooks against a real HTTP receiver: a receiver that is down, then too slow, then
//! up gets the event exactly once, signed, with one id across retries; a full queue drops
//! its oldest events; an event is given up on in time; redirects are failures; `notify`
//! never waits for a receiver that hangs.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::{Value, json};
use switchyard::config::Secret;
use switchyard::notify::{Counters, Notifier, Policy, Webhook};

use crate::support::receiver::{Mode, Receiver, signed};

const SECRET: &str = "webhook-test-secret";

fn counters() -> Counters {
    let c = |name: &str| prometheus::IntCounter::new(name, name).unwrap();
    Counters { delivered: c("delivered"), failed_attempts: c("failed_attempts"), dropped: c("dropped") }
}

/// Polls `what` every 5 ms until it holds, up to 10 s (for the counters, which signal
/// nothing).
async fn until(why: &str, what: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !what() {
        assert!(Instant::now() < deadline, "not within 10 s: {why}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn hook(r: &Receiver, timeout: Duration) -> Webhook {
    Webhook { url: r.url(), secret: Some(Secret::new(SECRET)), timeout }
}

fn fast_retries(queue: usize) -> Policy {
    Policy {
        queue,
        first_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        give_up_after: Duration::from_secs(30),
    }
}

#[tokio::test]
async fn down_then_slow_then_up_delivers_once_with_one_id() {
    let c = counters();
    let mut r = Receiver::down();
    let n = Notifier::start(vec![hook(&r, Duration::from_millis(300))], fast_retries(64), c.clone());
    let event =
        json!({"cluster": "main", "writer": {"region": "eu-west", "address": "192.0.2.2"}, "previous": "us-east"});
    n.notify("evt-0001", "writer.changed", event.clone());

    // Down: connections refused.
    until("two refused attempts", || c.failed_attempts.get() >= 2).await;
    assert!(r.seen().is_empty());

    // Slow: each attempt times out (300 ms) before the answer (1 s, a 503).
    r.listen(Mode::Slow(Duration::from_secs(1)));
    r.until("a request while slow", |s| !s.is_empty()).await;

    // Up.
    r.set(Mode::Up);
    r.until("a 2xx answer", |s| s.iter().any(|s| s.answered == Some(200))).await;
    until("delivered counted", || c.delivered.get() == 1).await;

    let seen = r.seen();
    assert!(seen.len() >= 2, "a slow attempt, then the good one: {seen:#?}");
    assert_eq!(seen.iter().filter(|s| s.answered == Some(200)).count(), 1, "exactly one 2xx: {seen:#?}");
    for s in &seen {
        assert_eq!(s.path, "/hook");
        assert_eq!(s.header("x-switchyard-event-id"), "evt-0001", "one id across retries");
        assert_eq!(s.header("x-switchyard-event"), "writer.changed");
        assert_eq!(s.header("content-type"), "application/json");
        assert_eq!(s.header("user-agent"), concat!("switchyard/", env!("CARGO_PKG_VERSION")));
        assert!(signed(s, SECRET), "a valid, recent signature: {s:#?}");
    }
    let good = seen.iter().find(|s| s.answered == Some(200)).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&good.body).unwrap(), event);
    let mut tampered = good.clone();
    tampered.body = Bytes::from(String::from_utf8(good.body.to_vec()).unwrap().replace("eu-west", "us-east"));
    assert!(!signed(&tampered, SECRET), "a changed body fails the check");
    assert!(c.failed_attempts.get() >= 3, "two refused, at least one timed out: {}", c.failed_attempts.get());
    assert_eq!((c.delivered.get(), c.dropped.get()), (1, 0));

    // Stopped: later events go nowhere and are not counted.
    n.stop();
    n.notify("evt-0002", "writer.changed", json!({}));
    assert_eq!((c.delivered.get(), c.dropped.get()), (1, 0));
}

#[tokio::test]
async fn a_full_queue_drops_its_oldest_event() {
    let c = counters();
    let mut r = Receiver::down();
    let n = Notifier::start(vec![hook(&r, Duration::from_millis(300))], fast_retries(2), c.clone());
    n.notify("e1", "writer.changed", json!({"n": 1}));
    // e1 is being retried (in an attempt or between two) when e2 and e3 come.
    until("e1 refused once", || c.failed_attempts.get() >= 1).await;
    n.notify("e2", "writer.changed", json!({"n": 2}));
    n.notify("e3", "writer.changed", json!({"n": 3}));
    until("e1 dropped", || c.dropped.get() == 1).await;

    r.listen(Mode::Up);
    r.until("two deliveries", |s| s.iter().filter(|s| s.answered == Some(200)).count() == 2).await;
    until("delivered counted", || c.delivered.get() == 2).await;
    let ids: Vec<String> = r.seen().iter().map(|s| s.header("x-switchyard-event-id").to_owned()).collect();
    assert_eq!(ids, ["e2", "e3"], "the newer two, in order; never e1");
    let bodies: Vec<Value> = r.seen().iter().map(|s| serde_json::from_slice(&s.body).unwrap()).collect();
    assert_eq!(bodies, [json!({"n": 2}), json!({"n": 3})]);
    assert_eq!((c.delivered.get(), c.dropped.get()), (2, 1));
}

#[tokio::test]
async fn an_event_is_given_up_on_after_give_up_after() {
    let c = counters();
    let mut r = Receiver::down();
    let policy = Policy { give_up_after: Duration::from_millis(300), ..fast_retries(64) };
    let n = Notifier::start(vec![hook(&r, Duration::from_millis(300))], policy, c.clone());
    n.notify("g1", "writer.changed", json!({"n": 1}));
    until("g1 given up on", || c.dropped.get() == 1).await;
    assert!(c.failed_attempts.get() >= 2, "retried before giving up: {}", c.failed_attempts.get());

    // Up again: only the next event comes, not the one given up on.
    r.listen(Mode::Up);
    n.notify("g2", "writer.changed", json!({"n": 2}));
    r.until("g2", |s| s.iter().any(|s| s.answered == Some(200))).await;
    until("delivered counted", || c.delivered.get() == 1).await;
    let ids: Vec<String> = r.seen().iter().map(|s| s.header("x-switchyard-event-id").to_owned()).collect();
    assert_eq!(ids, ["g2"]);
    assert_eq!((c.delivered.get(), c.dropped.get()), (1, 1));
}

#[tokio::test]
async fn notify_never_waits_for_a_receiver_that_hangs() {
    // `notify` is a plain function: no future to await, so nothing it could wait on.
    let _: fn(&Notifier, &str, &str, Value) = Notifier::notify;

    let c = counters();
    let mut r = Receiver::down();
    r.listen(Mode::Hang);
    let n = Notifier::start(vec![hook(&r, Duration::from_secs(10))], fast_retries(64), c.clone());
    n.notify("first", "writer.changed", json!({"n": 0}));
    r.until("the first event, which hangs", |s| s.len() == 1).await;

    // The first is in an attempt that hangs (for 10 s); 1000 more come meanwhile.
    for i in 1..=1000 {
        n.notify(&format!("e{i}"), "writer.changed", json!({"n": i}));
    }
    // 1001 events, room for 64: the 937 oldest are pushed out. The one in the hung attempt
    // is counted when that attempt ends, so 936 now.
    assert_eq!(c.dropped.get(), 936, "e1..e936 dropped at once");
    assert_eq!(r.seen().len(), 1);

    // Dropping the only handle stops the task: the hung attempt is abandoned, and the
    // 63 still queued and the abandoned one are counted as dropped.
    drop(n);
    until("everything undelivered counted as dropped", || c.dropped.get() == 1001).await;
    assert_eq!((c.delivered.get(), c.failed_attempts.get()), (0, 0));
    assert_eq!(r.seen().len(), 1, "nothing sent after the stop");
}

#[tokio::test]
async fn a_redirect_is_a_failure_and_not_followed() {
    let c = counters();
    let mut r = Receiver::down();
    r.listen(Mode::Redirect);
    let n = Notifier::start(vec![hook(&r, Duration::from_millis(300))], fast_retries(64), c.clone());
    n.notify("r1", "writer.changed", json!({}));
    r.until("a redirected request", |s| s.iter().any(|s| s.answered == Some(302))).await;
    until("the 302 counted as a failure", || c.failed_attempts.get() >= 1).await;
    r.set(Mode::Up);
    until("delivered on a retry", || c.delivered.get() == 1).await;
    let seen = r.seen();
    assert!(seen.iter().all(|s| s.path == "/hook"), "the redirect's target is never asked: {seen:#?}");
    let answers: Vec<u16> = seen.iter().filter_map(|s| s.answered).collect();
    assert_eq!(answers.last(), Some(&200));
    assert!(answers[..answers.len() - 1].iter().all(|&a| a == 302), "{answers:?}");
    assert_eq!(c.failed_attempts.get() as usize, answers.len() - 1, "each 302 a failed attempt");
    drop(n);
}

#[test]
fn without_webhooks_notify_does_nothing() {
    // No runtime here: with no webhooks, nothing is spawned.
    let c = counters();
    let n = Notifier::start(Vec::new(), Policy::default(), c.clone());
    n.notify("x", "writer.changed", json!({"a": 1}));
    n.clone().stop();
    assert_eq!((c.delivered.get(), c.failed_attempts.get(), c.dropped.get()), (0, 0, 0));
}

#[tokio::test]
async fn unusable_events_and_webhooks_are_dropped() {
    let c = counters();
    let bad = Webhook { url: "ftp://127.0.0.81/hook".into(), secret: None, timeout: Duration::from_secs(1) };
    let n = Notifier::start(vec![bad], Policy::default(), c.clone());
    n.notify("e1", "writer.changed", json!({}));
    until("the event for a non-HTTP URL dropped", || c.dropped.get() == 1).await;
    n.notify("e2\nX-Injected: 1", "writer.changed", json!({}));
    assert_eq!(c.dropped.get(), 2, "an id that is no header value: dropped at once");
    assert_eq!((c.delivered.get(), c.failed_attempts.get()), (0, 0));
}
