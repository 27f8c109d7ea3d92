//! Whether the PostgreSQL the gateway's tests use is there, decided once by xtask.
//!
//! The tests would each find out for themselves, and a notice printed inside a passing
//! test is captured and lost. So `cargo xtask test` asks once, says the answer before and
//! after the suites, and passes it down in `GATEWAY_TEST_PG` (`required` or `skip`).
//! The probe speaks just enough of PostgreSQL's wire protocol (a startup message) to tell
//! "a server that lets this user in" from "nothing there" without a client library.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The environment variable that carries the decision to the tests.
pub const DECISION: &str = "GATEWAY_TEST_PG";
const URL: &str = "GATEWAY_TEST_PG_URL";
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// xtask's decision about PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Postgres {
    /// It answers at `at`: the database suites run on it too.
    Answers { at: String },
    /// It is not used, and why.
    Skipped { why: String },
}

impl Postgres {
    /// Probes the server `GATEWAY_TEST_PG_URL` names (an explicit `GATEWAY_TEST_PG=skip`
    /// skips without asking).
    pub fn decide() -> Self {
        if std::env::var(DECISION).as_deref() == Ok("skip") {
            return Self::Skipped {
                why: format!("{DECISION}=skip"),
            };
        }
        let url = std::env::var(URL).unwrap_or_else(|_| DEFAULT_URL.into());
        let target = Target::parse(&url);
        match probe(&target) {
            Ok(()) => Self::Answers {
                at: target.describe(),
            },
            Err(e) => Self::Skipped {
                why: format!("PostgreSQL at {} does not answer: {e}", target.describe()),
            },
        }
    }

    /// The value of [`DECISION`] for the test processes.
    pub fn env_value(&self) -> &'static str {
        match self {
            Self::Answers { .. } => "required",
            Self::Skipped { .. } => "skip",
        }
    }

    /// What the summary says in the PostgreSQL column.
    pub fn column(&self) -> &'static str {
        match self {
            Self::Answers { .. } => "ran",
            Self::Skipped { .. } => "SKIPPED",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Answers { at } => format!(
                "PostgreSQL answers at {at}: the database suites run on SQLite and PostgreSQL"
            ),
            Self::Skipped { why } => format!(
                "*** {why}: the database suites run on SQLite only, PostgreSQL is SKIPPED ***"
            ),
        }
    }
}

/// Where to knock, read from a `postgres://user[:password]@host[:port]/database` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    user: String,
    host: String,
    port: u16,
    database: String,
}

impl Target {
    fn parse(url: &str) -> Self {
        let rest = url
            .split_once("://")
            .map_or(url, |(_, rest)| rest)
            .split(['?', '#'])
            .next()
            .unwrap_or_default();
        let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, address) = authority.rsplit_once('@').unwrap_or(("", authority));
        let user = credentials.split(':').next().unwrap_or_default();
        // `[::1]:5432` keeps its colons inside the brackets.
        let (host, port) = match address.strip_prefix('[').and_then(|a| a.split_once(']')) {
            Some((h, p)) => (h, p.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => match address.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().ok()),
                None => (address, None),
            },
        };
        let port = port.unwrap_or(5432);
        Self {
            user: if user.is_empty() { "postgres" } else { user }.to_owned(),
            host: if host.is_empty() { "127.0.0.1" } else { host }.to_owned(),
            port,
            database: if database.is_empty() {
                "postgres"
            } else {
                database
            }
            .to_owned(),
        }
    }

    fn describe(&self) -> String {
        format!("{}:{} (user {})", self.host, self.port, self.user)
    }
}

/// A startup message (protocol 3.0) and the server's first answer: an authentication
/// request means it is PostgreSQL and knows the user (the tests bring any password); an
/// error answer is what PostgreSQL says is wrong.
fn probe(target: &Target) -> Result<(), String> {
    let addr = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("the host has no address")?;
    let timeout = Duration::from_secs(3);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(&startup_message(&target.user, &target.database))
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 5];
    stream
        .read_exact(&mut head)
        .map_err(|e| format!("no answer ({e})"))?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; len.saturating_sub(4).min(8192)];
    stream
        .read_exact(&mut body)
        .map_err(|e| format!("a short answer ({e})"))?;
    // Terminate: we only came to knock.
    let _ = stream.write_all(&[b'X', 0, 0, 0, 4]);
    answer(head[0], &body)
}

fn startup_message(user: &str, database: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196_608u32.to_be_bytes());
    for (key, value) in [("user", user), ("database", database)] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let len = u32::try_from(body.len() + 4).unwrap_or(u32::MAX);
    let mut message = len.to_be_bytes().to_vec();
    message.extend_from_slice(&body);
    message
}

/// Reads the server's first message: `R` (authentication) is a yes, `E` carries the
/// reason it is a no.
fn answer(kind: u8, body: &[u8]) -> Result<(), String> {
    match kind {
        b'R' => Ok(()),
        b'E' => {
            let message = body
                .split(|b| *b == 0)
                .find(|field| field.first() == Some(&b'M'))
                .map_or_else(
                    || "an error without a message".to_owned(),
                    |field| String::from_utf8_lossy(&field[1..]).into_owned(),
                );
            Err(message)
        }
        other => Err(format!(
            "an answer that is not PostgreSQL's (first byte {other:#04x})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_names_user_host_port_and_database() {
        assert_eq!(
            Target::parse("postgres://postgres@127.0.0.1:5432/postgres"),
            Target {
                user: "postgres".into(),
                host: "127.0.0.1".into(),
                port: 5432,
                database: "postgres".into(),
            }
        );
        assert_eq!(
            Target::parse("postgresql://me:secret@db.example/app?sslmode=disable"),
            Target {
                user: "me".into(),
                host: "db.example".into(),
                port: 5432,
                database: "app".into(),
            }
        );
    }

    #[test]
    fn an_authentication_request_is_a_yes_and_an_error_says_why_not() {
        assert_eq!(answer(b'R', &[0, 0, 0, 0]), Ok(()));
        assert_eq!(
            answer(b'E', b"SFATAL\0C28000\0Mrole \"x\" does not exist\0\0"),
            Err("role \"x\" does not exist".to_owned())
        );
        assert!(answer(b'H', b"").is_err());
    }

    #[test]
    fn the_startup_message_is_length_prefixed_protocol_three() {
        let m = startup_message("u", "d");
        assert_eq!(&m[..4], &u32::try_from(m.len()).unwrap_or(0).to_be_bytes());
        assert_eq!(&m[4..8], &[0, 3, 0, 0]);
        assert_eq!(&m[8..], b"user\0u\0database\0d\0\0");
    }
}
