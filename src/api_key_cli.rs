//! `protofuse api-key`: make a key for `[[api.keys]]`, or the digest of one a caller already holds. The
//! configuration stores only digests, so the key itself is printed once, here, and nowhere else.

use std::io::{BufRead, Write};

use clap::{Args, Subcommand};
use rand::Rng;

use crate::auth::{Scope, digest_hex};

/// Bytes of randomness in a new key: 256 bits, beyond guessing whatever the rate limit.
const KEY_BYTES: usize = 32;
/// Marks a protofuse key in a caller's configuration or in a secret scanner's rules.
const KEY_PREFIX: &str = "pf_";

/// `protofuse api-key ...`.
#[derive(Debug, Args)]
pub struct ApiKeyArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ApiKeyAction,
}

/// The api-key subcommands.
#[derive(Debug, Subcommand)]
pub enum ApiKeyAction {
    /// Make a fresh random key: prints the key (give it to the caller; it is not stored) and the `[[api.keys]]`
    /// entry to add to the configuration.
    New {
        /// The caller's name, as logs and metrics show it.
        #[arg(long)]
        id: String,
        /// What the key may do (repeat or comma-separate).
        #[arg(long = "scope", value_enum, value_delimiter = ',', default_values_t = [Scope::Read, Scope::Write])]
        scopes: Vec<Scope>,
    },
    /// Read keys a caller already has from standard input, one per line, and print each one's SHA-256 as
    /// `[[api.keys]]` wants it.
    Digest,
}

/// Runs `action`, writing to `out` (and reading keys from `input` for `digest`).
pub fn run(action: ApiKeyAction, input: impl BufRead, out: &mut impl Write) -> std::io::Result<()> {
    match action {
        ApiKeyAction::New { id, scopes } => {
            let key = new_key();
            writeln!(
                out,
                "# The key, for the caller (shown once; the configuration keeps only its digest):"
            )?;
            writeln!(out, "# {key}")?;
            writeln!(out, "[[api.keys]]")?;
            writeln!(out, "id = {}", toml_string(&id))?;
            writeln!(out, "sha256 = \"{}\"", digest_hex(&key))?;
            let scopes: Vec<String> = scopes.iter().map(|s| format!("\"{}\"", s.as_str())).collect();
            writeln!(out, "scopes = [{}]", scopes.join(", "))?;
        }
        ApiKeyAction::Digest => {
            for line in input.lines() {
                let line = line?;
                let key = line.trim();
                if !key.is_empty() {
                    writeln!(out, "{}", digest_hex(key))?;
                }
            }
        }
    }
    Ok(())
}

fn new_key() -> String {
    // ThreadRng is a CSPRNG seeded and reseeded from the operating system.
    let bytes: [u8; KEY_BYTES] = rand::rng().random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{KEY_PREFIX}{hex}")
}

/// `s` as a TOML basic string: JSON's string escapes are a subset of TOML's, and serde_json never writes the one
/// (`\/`) TOML lacks.
fn toml_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}
