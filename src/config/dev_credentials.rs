//! Development credentials: generated once, kept in the data folder, so that
//! a fresh clone runs with no configuration and `send` signs with the same
//! key and secret as the server.

use std::path::{Path, PathBuf};

use rand::{distributions::Alphanumeric, Rng};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{error, ConfigError};

const FILE: &str = "dev-credentials.json";

#[derive(Debug, Serialize, Deserialize)]
pub struct DevCredentials {
    app_key: String,
    app_secret: String,
    api_token: String,
}

/// Which settings came from the generated file rather than the environment.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    pub app_key: bool,
    pub app_secret: bool,
    pub api_token: Option<SecretString>,
    pub file: Option<PathBuf>,
}

impl Generated {
    pub fn any(&self) -> bool {
        self.app_key || self.app_secret || self.api_token.is_some()
    }
}

impl DevCredentials {
    /// Fills whatever the environment left unset; returns what was filled.
    pub fn fill(
        self,
        app_key: &mut Option<String>,
        app_secret: &mut Option<SecretString>,
        tokens: &mut Vec<SecretString>,
    ) -> Generated {
        let mut generated = Generated::default();
        if app_key.is_none() {
            *app_key = Some(self.app_key);
            generated.app_key = true;
        }
        if app_secret.is_none() {
            *app_secret = Some(SecretString::from(self.app_secret));
            generated.app_secret = true;
        }
        if tokens.is_empty() {
            let token = SecretString::from(self.api_token);
            tokens.push(token.clone());
            generated.api_token = Some(token);
        }
        generated
    }
}

pub fn load_or_create(data_dir: &Path) -> Result<DevCredentials, ConfigError> {
    let path = data_dir.join(FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return serde_json::from_str(&text).map_err(|_| {
            error(
                "TIKTOK_APP_SECRET",
                format!(
                    "{} is damaged; delete it to generate new development credentials",
                    path.display()
                ),
            )
        });
    }
    let creds = DevCredentials {
        app_key: format!("dev{}", random(10).to_lowercase()),
        app_secret: random(40),
        api_token: random(32),
    };
    write_private(
        &path,
        &serde_json::to_string_pretty(&creds).unwrap_or_default(),
    )
    .map_err(|e| {
        error(
            "DATA_DIR",
            format!(
                "cannot write development credentials to {}: {e}",
                path.display()
            ),
        )
    })?;
    Ok(creds)
}

fn random(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    options.open(path)?.write_all(text.as_bytes())
}
