//! What the subcommands do; `main.rs` only parses the command line.

use std::{io::Read, path::Path};

use anyhow::{bail, Context};
use secrecy::ExposeSecret;

use crate::{
    app::{shutdown_signal, Application},
    config::{PoolSettings, Settings},
    store::Store,
    telemetry,
    tiktok::signature::sign,
};

pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    telemetry::init_logging(settings.log_format);
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    let app = Application::build(settings.clone()).await?;
    let port = app.port();
    tracing::info!(
        host = %settings.host,
        port,
        env = ?settings.env,
        database = %settings.database.masked(),
        "listening"
    );
    if settings.generated.any() {
        print_development_help(&settings, port);
    }
    app.run_until(shutdown_signal()).await
}

/// In development with generated credentials: how to send a signed test
/// event and read it back. Printed to stdout, not logged, and never in
/// production, where nothing is generated.
fn print_development_help(settings: &Settings, port: u16) {
    let host = local_host(settings);
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| {
            let cwd = std::env::current_dir().ok()?;
            p.strip_prefix(cwd).ok().map(Path::to_path_buf)
        })
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "tiktok-webhook".into());
    let file = settings
        .generated
        .file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| {
            settings
                .data_dir
                .join("dev-credentials.json")
                .display()
                .to_string()
        });
    println!("\nDevelopment mode: credentials were generated and kept in {file}");
    println!("Send a signed test event (in a second shell, from this folder):");
    // With PORT=0 the port was picked at start: name it.
    let url = if settings.port == port {
        String::new()
    } else {
        format!(" --url http://{host}:{port}/webhook/tiktok")
    };
    println!("  {exe} send tests/data/events/01-order-status-change.json{url}");
    if let Some(token) = &settings.generated.api_token {
        println!("Then read it back:");
        println!(
            "  curl -H 'Authorization: Bearer {}' http://{host}:{port}/api/orders/578112345609871201",
            token.expose_secret()
        );
    }
    println!();
}

fn local_host(settings: &Settings) -> String {
    if settings.host.is_unspecified() {
        "127.0.0.1".into()
    } else if settings.host.is_ipv6() {
        format!("[{}]", settings.host)
    } else {
        settings.host.to_string()
    }
}

pub async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let pool = PoolSettings {
        size: 1,
        ..settings.pool()
    };
    let store = Store::open(&settings.database, pool)
        .await
        .with_context(|| format!("DATABASE_URL: cannot open {}", settings.database.masked()))?;
    store.close().await;
    println!("schema up to date ({})", settings.database.masked());
    Ok(())
}

pub fn sign_file(settings: &Settings, file: &str) -> anyhow::Result<()> {
    let body = read_input(file)?;
    println!(
        "{}",
        sign(
            &settings.app_key,
            settings.app_secret.expose_secret(),
            &body
        )
    );
    Ok(())
}

pub async fn send(
    settings: &Settings,
    file: &str,
    url: Option<String>,
    as_is: bool,
) -> anyhow::Result<()> {
    let mut body = read_input(file)?;
    if !as_is {
        body = with_timestamp(&body, chrono::Utc::now().timestamp());
    }
    let url = url.unwrap_or_else(|| {
        format!(
            "http://{}:{}/webhook/tiktok",
            local_host(settings),
            settings.port
        )
    });
    let signature = sign(
        &settings.app_key,
        settings.app_secret.expose_secret(),
        &body,
    );
    let response = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("authorization", signature)
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    println!("{}\n{text}", status.as_u16());
    if !status.is_success() {
        bail!("the server answered {status}");
    }
    Ok(())
}

pub fn check_config(settings: &Settings) {
    for (name, value) in settings.describe() {
        println!("{name}={value}");
    }
    for warning in &settings.warnings {
        println!("warning: {warning}");
    }
    println!("configuration ok");
}

fn read_input(file: &str) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    if file == "-" {
        std::io::stdin().read_to_end(&mut body)?;
    } else {
        body = std::fs::read(file).with_context(|| format!("cannot read {file}"))?;
    }
    Ok(body)
}

/// The body with its top-level `timestamp` value replaced by `now`, edited as
/// text so that every other byte (spacing, key order, big numbers) stays as
/// it was. A body without one is returned unchanged.
pub fn with_timestamp(body: &[u8], now: i64) -> Vec<u8> {
    match find_top_level_value(body, b"timestamp") {
        Some((start, end)) => {
            let mut out = Vec::with_capacity(body.len() + 8);
            out.extend_from_slice(&body[..start]);
            out.extend_from_slice(now.to_string().as_bytes());
            out.extend_from_slice(&body[end..]);
            out
        }
        None => body.to_vec(),
    }
}

/// The byte range of the value of `key` in the outermost object, if that
/// value is a number or a string of digits.
fn find_top_level_value(body: &[u8], key: &[u8]) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                let end = string_end(body, i)?;
                let is_key = depth == 1 && &body[i + 1..end] == key;
                i = end + 1;
                if is_key {
                    let mut j = skip_ws(body, i);
                    if body.get(j) != Some(&b':') {
                        continue;
                    }
                    j = skip_ws(body, j + 1);
                    let quoted = body.get(j) == Some(&b'"');
                    let start = j;
                    let mut k = if quoted { j + 1 } else { j };
                    while body.get(k).is_some_and(|c| c.is_ascii_digit()) {
                        k += 1;
                    }
                    let end = if quoted { k + 1 } else { k };
                    let digits = if quoted { k - j - 1 } else { k - j };
                    if digits > 0 && (!quoted || body.get(k) == Some(&b'"')) {
                        return Some((start, end));
                    }
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

fn string_end(body: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    while i < body.len() {
        match body[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn skip_ws(body: &[u8], mut i: usize) -> usize {
    while body.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::with_timestamp;

    #[test]
    fn only_the_top_level_timestamp_changes() {
        let body = br#"{"type":1, "data":{"timestamp":5,"id":123456789012345678901},"timestamp" : 1700000000}"#;
        let out = with_timestamp(body, 1800000000);
        assert_eq!(
            out,
            br#"{"type":1, "data":{"timestamp":5,"id":123456789012345678901},"timestamp" : 1800000000}"#
        );
    }

    #[test]
    fn a_string_value_named_timestamp_is_not_a_key() {
        let body = br#"{"note":"timestamp","x":{"a":"\"timestamp\""},"timestamp":"17"}"#;
        let out = with_timestamp(body, 99);
        assert_eq!(
            out,
            br#"{"note":"timestamp","x":{"a":"\"timestamp\""},"timestamp":99}"#
        );
    }

    #[test]
    fn a_body_without_timestamp_is_unchanged() {
        assert_eq!(with_timestamp(b"{\"type\":1}", 5), b"{\"type\":1}");
    }
}
