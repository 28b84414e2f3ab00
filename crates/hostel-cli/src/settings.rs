//! The configuration's layers, merged with figment: a flag beats a `HOSTEL_*` environment
//! variable, which beats hostel.toml, which beats the default. Every key of every layer is
//! tagged with where it came from, so an error and `hostel config show` can name the flag, the
//! variable or the file.
//!
//! `HOSTEL_<SECTION>_<KEY>` names `[section] key` (`HOSTEL_SSH_LISTEN` is `[ssh] listen`,
//! `HOSTEL_HTTP_WEB_LISTEN` is `[http] web_listen`): the first `_` after the prefix separates
//! the section, whose names have none. Other `HOSTEL_*` variables (`HOSTEL_ROOT`,
//! `HOSTEL_TOKEN`, ...) belong to the command line and are not configuration keys.

use crate::error::CliError;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use hostel_core::ErrorCode;
use hostel_core::config::{Config, SECTIONS};
use std::path::{Path, PathBuf};

const ENV_PREFIX: &str = "HOSTEL_";
const DEFAULT: &str = "default";
const ENV: &str = "environment";

/// A key set on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// The flag as typed, for messages: `--set` or `--ssh-listen`.
    pub flag: String,
    /// `section.key`.
    pub key: String,
    /// The value as typed; it reads as TOML would (`10` a number, `true` a bool, `[a, b]` a
    /// list), else as text.
    pub value: String,
}

impl Flag {
    /// Parses `--set KEY=VALUE`.
    pub fn parse_set(arg: &str) -> Result<Flag, CliError> {
        let bad = |why: &str| {
            CliError::new(
                ErrorCode::InvalidInput,
                format!("--set {arg:?}: {why}"),
                Some(
                    "write --set SECTION.KEY=VALUE, e.g. --set ssh.keepalive_secs=10; \
                     `hostel config show` lists the keys"
                        .into(),
                ),
            )
        };
        let (key, value) = arg.split_once('=').ok_or_else(|| bad("no `=`"))?;
        let key = key.trim();
        match key.split_once('.') {
            Some((section, rest)) if SECTIONS.contains(&section) && !rest.is_empty() => {}
            _ => return Err(bad(&format!("{key:?} is not SECTION.KEY"))),
        }
        Ok(Flag {
            flag: "--set".into(),
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }
}

/// What goes into the merge.
#[derive(Debug, Clone)]
pub struct Layers {
    /// hostel.toml's path.
    pub file: PathBuf,
    /// Whether the path was given (`--config`): then it must exist.
    pub file_given: bool,
    /// Keys set by flags, later ones winning.
    pub flags: Vec<Flag>,
}

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// hostel's built-in default.
    Default,
    /// A configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A flag.
    Flag(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str(DEFAULT),
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Env(v) | Source::Flag(v) => f.write_str(v),
        }
    }
}

/// One key's effective value and its source.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Setting {
    /// `section.key`.
    pub key: String,
    /// The value, as JSON (`null`: unset).
    pub value: serde_json::Value,
    /// Where it came from, as `hostel config show` prints it.
    pub source: String,
}

/// The merged configuration, and the layers it came from.
#[derive(Debug)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    figment: Figment,
}

/// The environment variable that names `key` (`ssh.listen` → `HOSTEL_SSH_LISTEN`).
pub fn env_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.replacen('.', "_", 1).to_ascii_uppercase()
    )
}

/// A flag as a figment provider of its own, so its key is tagged with the flag's name.
struct FlagProvider(Flag);

impl Provider for FlagProvider {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.0.flag.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let value: Value = self
            .0
            .value
            .parse()
            .unwrap_or_else(|_| Value::from(self.0.value.clone()));
        let dict = figment::util::nest(&self.0.key, value)
            .into_dict()
            .unwrap_or_default();
        Ok(Profile::Default.collect(dict))
    }
}

/// Merges the layers; reads the file and the environment.
pub fn load(layers: &Layers) -> Result<Loaded, CliError> {
    let mut figment = Figment::new().merge(Serialized::defaults(Config::default()));
    match std::fs::metadata(&layers.file) {
        Ok(_) => figment = figment.merge(Toml::file_exact(&layers.file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !layers.file_given => {}
        Err(e) => {
            return Err(CliError::new(
                ErrorCode::InvalidInput,
                format!("cannot read config {}: {e}", layers.file.display()),
                Some("pass an existing file with --config, or none for the defaults".into()),
            ));
        }
    }
    let env = Env::prefixed(ENV_PREFIX).filter_map(|key| {
        let key = key.as_str().to_ascii_lowercase();
        let (section, rest) = key.split_once('_')?;
        (SECTIONS.contains(&section) && !rest.is_empty())
            .then(|| format!("{section}.{rest}").into())
    });
    figment = figment.merge(env);
    for flag in &layers.flags {
        figment = figment.merge(FlagProvider(flag.clone()));
    }
    let config: Config = figment.extract().map_err(|e| extract_error(&figment, e))?;
    config.validate().map_err(|e| {
        let from = e
            .key
            .as_deref()
            .map(|k| format!(" (from {})", source_of(&figment, k)))
            .unwrap_or_default();
        invalid(format!("config: {}{from}", e.message))
    })?;
    Ok(Loaded { config, figment })
}

fn invalid(message: String) -> CliError {
    CliError::new(
        ErrorCode::InvalidInput,
        message,
        Some("fix the key named where it was set, or see `hostel config example`".into()),
    )
}

fn extract_error(figment: &Figment, e: figment::Error) -> CliError {
    let key = e.path.join(".");
    let from = match &e.metadata {
        Some(m) => classify(m, &key).to_string(),
        None if key.is_empty() => "config".to_owned(),
        None => source_of(figment, &key).to_string(),
    };
    let kind = match &e.kind {
        figment::error::Kind::UnknownField(field, expected) => format!(
            "unknown field `{field}`, expected one of {}",
            expected
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        k => k.to_string(),
    };
    let what = if key.is_empty() {
        kind
    } else {
        format!("{key}: {kind}")
    };
    invalid(format!("config: {from}: {what}"))
}

fn classify(m: &Metadata, key: &str) -> Source {
    if let Some(figment::Source::File(p)) = &m.source {
        return Source::File(p.clone());
    }
    if m.name.starts_with("--") {
        return Source::Flag(m.name.to_string());
    }
    if m.name.contains(ENV) {
        return Source::Env(env_name(key));
    }
    Source::Default
}

fn source_of(figment: &Figment, key: &str) -> Source {
    figment
        .find_metadata(key)
        .map(|m| classify(m, key))
        .unwrap_or(Source::Default)
}

impl Loaded {
    /// Every key, in the file's order, with its effective value and source; only `key` (a
    /// key or a section) when given.
    pub fn settings(&self, only: Option<&str>) -> Result<Vec<Setting>, CliError> {
        let tree = serde_json::to_value(&self.config)
            .map_err(|e| invalid(format!("config: cannot show the configuration: {e}")))?;
        let mut out = Vec::new();
        let order = example_order();
        for section in SECTIONS {
            let Some(keys) = tree.get(section).and_then(|v| v.as_object()) else {
                continue;
            };
            for (name, value) in keys {
                let key = format!("{section}.{name}");
                if only.is_some_and(|o| o != key && o != section) {
                    continue;
                }
                out.push(Setting {
                    source: source_of(&self.figment, &key).to_string(),
                    key,
                    value: value.clone(),
                });
            }
        }
        out.sort_by_key(|s| order.iter().position(|k| *k == s.key).unwrap_or(usize::MAX));
        if let Some(o) = only
            && out.is_empty()
        {
            return Err(CliError::new(
                ErrorCode::NotFound,
                format!("no configuration key {o:?}"),
                Some("`hostel config show` lists them all, e.g. ssh.listen".into()),
            ));
        }
        Ok(out)
    }
}

/// Every `section.key` in the order the commented example gives them, which is the order an
/// admin reads them in: a `[section]` line, then `key = ...` or `# key = ...` lines.
fn example_order() -> Vec<String> {
    let mut section = "";
    let mut keys = Vec::new();
    for line in hostel_core::config::EXAMPLE.lines() {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s;
        } else if let Some((name, _)) = line.trim_start_matches("# ").split_once(" = ")
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            keys.push(format!("{section}.{name}"));
        }
    }
    keys
}

/// hostel.toml's path for a root, unless `--config` names another.
pub fn file_for(root: &Path, given: Option<&Path>) -> (PathBuf, bool) {
    match given {
        Some(p) => (p.to_path_buf(), true),
        None => (hostel_service::Paths::new(root).config(), false),
    }
}

#[cfg(test)]
// figment::Jail's closures return figment's error, which is large; it is not ours to shrink.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    fn layers(dir: &Path, file: Option<&str>, flags: &[&str]) -> Layers {
        let path = dir.join("hostel.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        Layers {
            file: path,
            file_given: false,
            flags: flags.iter().map(|f| Flag::parse_set(f).unwrap()).collect(),
        }
    }

    fn show(l: &Loaded, key: &str) -> (serde_json::Value, String) {
        let s = l.settings(Some(key)).unwrap();
        (s[0].value.clone(), s[0].source.clone())
    }

    #[test]
    fn a_flag_beats_the_environment_beats_the_file_beats_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let l = layers(
            dir.path(),
            Some("[ssh]\nlisten = \"0.0.0.0:2200\"\nkeepalive_secs = 5\nidle_timeout_secs = 7\n"),
            &["ssh.listen=127.0.0.1:2300"],
        );
        figment::Jail::expect_with(|jail| {
            jail.set_env("HOSTEL_SSH_LISTEN", "127.0.0.1:2400");
            jail.set_env("HOSTEL_SSH_KEEPALIVE_SECS", "9");
            jail.set_env("HOSTEL_ROOT", "/elsewhere");
            let loaded = load(&l).unwrap();
            assert_eq!(loaded.config.ssh.listen, "127.0.0.1:2300");
            assert_eq!(loaded.config.ssh.keepalive_secs, 9);
            assert_eq!(loaded.config.ssh.idle_timeout_secs, 7);
            assert_eq!(show(&loaded, "ssh.listen").1, "--set");
            assert_eq!(
                show(&loaded, "ssh.keepalive_secs").1,
                "HOSTEL_SSH_KEEPALIVE_SECS"
            );
            assert_eq!(
                show(&loaded, "ssh.idle_timeout_secs").1,
                dir.path().join("hostel.toml").display().to_string()
            );
            assert_eq!(
                show(&loaded, "ssh.ban_secs"),
                (3600.into(), "default".into())
            );
            Ok(())
        });
    }

    #[test]
    fn every_key_can_come_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let l = layers(dir.path(), None, &[]);
        let all = load(&l).unwrap().settings(None).unwrap();
        assert_eq!(all.len(), 44, "a new key needs a line here and in the docs");
        figment::Jail::expect_with(|jail| {
            jail.set_env("HOSTEL_DEFAULTS_MEMORY", "1073741824");
            jail.set_env("HOSTEL_DEFAULTS_CPUS", "1.5");
            jail.set_env("HOSTEL_SSH_ACCEPT_ENV", "[LANG, TZ]");
            jail.set_env("HOSTEL_HTTP_WEB_LISTEN", "127.0.0.1:8081");
            jail.set_env("HOSTEL_STORAGE_POOL_SIZE", "20G");
            jail.set_env("HOSTEL_NETWORK_PACKET_FILTER", "false");
            jail.set_env("HOSTEL_ENGINE_KIND", "incus");
            let c = load(&l).unwrap().config;
            assert_eq!(c.engine.kind, hostel_core::config::EngineKind::Incus);
            assert_eq!(c.engine.socket(), hostel_core::config::DEFAULT_INCUS_SOCKET);
            assert_eq!(c.defaults.memory, hostel_core::ByteSize::gib(1));
            assert_eq!(c.defaults.cpus.as_millis(), 1500);
            assert_eq!(c.ssh.accept_env, ["LANG", "TZ"]);
            assert_eq!(c.http.web_listen.as_deref(), Some("127.0.0.1:8081"));
            assert_eq!(c.storage.pool_size, Some(hostel_core::ByteSize::gib(20)));
            assert!(!c.network.packet_filter);
            Ok(())
        });
        for s in &all {
            assert_eq!(s.source, "default", "{}", s.key);
            assert!(
                example_order().contains(&s.key),
                "{} is missing from the example",
                s.key
            );
        }
    }

    #[test]
    fn errors_name_the_key_and_where_it_was_set() {
        let dir = tempfile::tempdir().unwrap();
        let l = layers(dir.path(), Some("[defaults]\npids = 2\n"), &[]);
        let path = dir.path().join("hostel.toml").display().to_string();
        let e = load(&l).unwrap_err();
        assert_eq!(
            e.message,
            format!("config: [defaults] pids 2: below the minimum of 16 (from {path})")
        );
        figment::Jail::expect_with(|jail| {
            jail.set_env("HOSTEL_SSH_KEEPALIVE_SECS", "soon");
            let e = load(&layers(dir.path(), Some(""), &[])).unwrap_err();
            assert!(
                e.message
                    .starts_with("config: HOSTEL_SSH_KEEPALIVE_SECS: ssh.keepalive_secs: "),
                "{}",
                e.message
            );
            jail.set_env("HOSTEL_SSH_KEEPALIVE_SECS", "5");
            jail.set_env("HOSTEL_SSH_LISTN", "x");
            let e = load(&layers(dir.path(), Some(""), &[])).unwrap_err();
            assert!(e.message.contains("listn"), "{}", e.message);
            Ok(())
        });
        let e = load(&layers(dir.path(), Some(""), &["defaults.memory=lots"])).unwrap_err();
        assert!(
            e.message.starts_with("config: --set: defaults.memory: "),
            "{}",
            e.message
        );
        let e = load(&layers(dir.path(), Some("[ssh\n"), &[])).unwrap_err();
        assert!(e.message.contains(&path), "{}", e.message);
    }

    #[test]
    fn set_takes_section_dot_key() {
        for bad in ["ssh.listen", "listen=1", "nosuch.key=1", "ssh.=1"] {
            assert!(Flag::parse_set(bad).is_err(), "{bad}");
        }
        let f = Flag::parse_set("http.hosts=[\"a\", \"b\"]").unwrap();
        assert_eq!(
            (f.key.as_str(), f.value.as_str()),
            ("http.hosts", "[\"a\", \"b\"]")
        );
    }

    #[test]
    fn a_given_file_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = layers(dir.path(), None, &[]);
        assert!(load(&l).is_ok());
        l.file_given = true;
        let e = load(&l).unwrap_err();
        assert!(e.message.starts_with("cannot read config"), "{}", e.message);
    }

    #[test]
    fn env_names_split_at_the_section() {
        assert_eq!(env_name("http.web_listen"), "HOSTEL_HTTP_WEB_LISTEN");
        assert_eq!(env_name("ssh.listen"), "HOSTEL_SSH_LISTEN");
    }

    /// A variable the scripts read for themselves must not look like a configuration key:
    /// `HOSTEL_ENGINE_LOG` once made every command fail with "unknown key engine.log".
    #[test]
    fn the_scripts_own_variables_are_not_taken_for_keys() {
        let top = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let keys = serde_json::to_value(hostel_core::config::Config::default()).unwrap();
        let mut checked = 0;
        for dir in ["scripts", "dist", "dist/debian", ".ci"] {
            for entry in std::fs::read_dir(top.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                    let Some(rest) = word.strip_prefix("HOSTEL_") else {
                        continue;
                    };
                    let rest = rest.to_ascii_lowercase();
                    for section in hostel_core::config::SECTIONS {
                        if let Some(key) = rest.strip_prefix(&format!("{section}_")) {
                            checked += 1;
                            assert!(
                                keys[section].get(key).is_some(),
                                "{} reads {word}, which hostel takes for the unknown key \
                                 {section}.{key}: name it otherwise",
                                path.display()
                            );
                        }
                    }
                }
            }
        }
        assert!(
            checked > 0,
            "HOSTEL_SSH_LISTEN in dist/default was not seen"
        );
    }
}
