//! Image builds on Incus from the same Dockerfiles as on Docker: the instructions hostel's
//! images use (`ARG`, `FROM`, `LABEL`, `ENV`, `RUN`, `COPY`, `ENTRYPOINT`) run in a build
//! instance made from the parent image, which is then published as the new image.
//!
//! What Docker keeps in an image's config, Incus keeps in its properties: `ENV` as
//! `hostel.env.<NAME>` (given to the init of every instance made from it) and `ENTRYPOINT` as
//! `hostel.entrypoint` (the init itself, in place of `/sbin/init`). A child image starts from
//! its parent's properties, as a Docker image inherits its parent's config.

use crate::RuntimeError;
use serde_json::Value;
use std::collections::BTreeMap;

/// Image property prefix of an `ENV`.
pub(super) const PROP_ENV: &str = "hostel.env.";
/// Image property holding the `ENTRYPOINT` (a JSON array).
pub(super) const PROP_ENTRYPOINT: &str = "hostel.entrypoint";

/// One build step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// Run a shell command.
    Run(String),
    /// Copy a file of the context to a path.
    Copy { source: String, target: String },
}

/// A Dockerfile read for a build with these arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Plan {
    /// The parent image.
    pub(super) from: String,
    /// `ARG` values (the build's over the defaults), given to `RUN` as environment.
    pub(super) args: BTreeMap<String, String>,
    /// `ENV` values.
    pub(super) env: BTreeMap<String, String>,
    /// `LABEL`s.
    pub(super) labels: BTreeMap<String, String>,
    /// `ENTRYPOINT`, if set here.
    pub(super) entrypoint: Option<Vec<String>>,
    /// The steps, in order.
    pub(super) steps: Vec<Step>,
}

fn bad(message: String) -> RuntimeError {
    RuntimeError::Unsupported(format!("Dockerfile: {message}"))
}

/// The logical lines: comments dropped, lines ending in `\` joined to the next (the backslash
/// and the line break removed, as Docker does).
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || (current.is_none() && trimmed.is_empty()) {
            continue;
        }
        let (body, more) = match line.trim_end().strip_suffix('\\') {
            Some(b) => (b, true),
            None => (line, false),
        };
        let joined = match current.take() {
            Some(mut c) => {
                c.push_str(body);
                c
            }
            None => body.trim_start().to_owned(),
        };
        if more {
            current = Some(joined);
        } else {
            out.push(joined);
        }
    }
    out.extend(current);
    out
}

/// `$NAME` and `${NAME}` replaced from `vars` (unknown names by nothing, as Docker does).
fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(rest.get(..i).unwrap_or_default());
        let after = rest.get(i + 1..).unwrap_or_default();
        let (name, tail) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (
                    inner.get(..end).unwrap_or_default(),
                    inner.get(end + 1..).unwrap_or_default(),
                ),
                None => ("", after),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (
                after.get(..end).unwrap_or_default(),
                after.get(end..).unwrap_or_default(),
            )
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
        } else {
            out.push_str(vars.get(name).map(String::as_str).unwrap_or_default());
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// A value with one level of double quotes taken off.
fn unquote(v: &str) -> String {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
        .to_owned()
}

/// `K=V` (or `K V` for one pair).
fn pair(rest: &str) -> Option<(String, String)> {
    match rest.split_once('=') {
        Some((k, v)) if !k.contains(char::is_whitespace) => {
            Some((k.trim().to_owned(), unquote(v.trim())))
        }
        _ => {
            let (k, v) = rest.split_once(char::is_whitespace)?;
            Some((k.to_owned(), unquote(v.trim())))
        }
    }
}

/// Reads a Dockerfile for a build with `build_args`.
pub(super) fn plan(
    text: &str,
    build_args: &BTreeMap<String, String>,
) -> Result<Plan, RuntimeError> {
    let mut p = Plan::default();
    for line in logical_lines(text) {
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let rest = rest.trim();
        let mut vars = p.args.clone();
        vars.extend(p.env.clone());
        match word.to_ascii_uppercase().as_str() {
            "ARG" => {
                let (name, default) = match rest.split_once('=') {
                    Some((n, d)) => (n.trim().to_owned(), Some(unquote(d.trim()))),
                    None => (rest.to_owned(), None),
                };
                if let Some(v) = build_args.get(&name).cloned().or(default) {
                    p.args.insert(name, v);
                }
            }
            "FROM" => p.from = substitute(rest, &vars),
            "LABEL" => {
                let (k, v) = pair(rest).ok_or_else(|| bad(format!("LABEL {rest:?}")))?;
                p.labels.insert(k, substitute(&v, &vars));
            }
            "ENV" => {
                let (k, v) = pair(rest).ok_or_else(|| bad(format!("ENV {rest:?}")))?;
                p.env.insert(k, substitute(&v, &vars));
            }
            "RUN" => p.steps.push(Step::Run(rest.to_owned())),
            "COPY" => {
                let parts: Vec<&str> = rest.split_whitespace().collect();
                let [source, target] = parts.as_slice() else {
                    return Err(bad(format!("COPY {rest:?}: one source and one target")));
                };
                p.steps.push(Step::Copy {
                    source: substitute(source, &vars),
                    target: substitute(target, &vars),
                });
            }
            "ENTRYPOINT" => {
                let argv: Vec<String> = serde_json::from_str(rest)
                    .map_err(|_| bad(format!("ENTRYPOINT {rest}: only the JSON form")))?;
                p.entrypoint = Some(argv);
            }
            other => return Err(bad(format!("{other} is not an instruction hostel builds"))),
        }
    }
    if p.from.is_empty() {
        return Err(bad("no FROM".into()));
    }
    Ok(p)
}

/// The image properties of a build on a parent with `parent` properties.
pub(super) fn properties(
    parent: &BTreeMap<String, String>,
    plan: &Plan,
    labels: &BTreeMap<String, String>,
    description: &str,
) -> BTreeMap<String, String> {
    let mut props = parent.clone();
    props.extend(
        plan.env
            .iter()
            .map(|(k, v)| (format!("{PROP_ENV}{k}"), v.clone())),
    );
    if let Some(e) = &plan.entrypoint {
        props.insert(PROP_ENTRYPOINT.into(), Value::from(e.clone()).to_string());
    }
    props.extend(plan.labels.clone());
    props.extend(labels.clone());
    props.insert("description".into(), description.to_owned());
    props
}

/// The files of a build context: path, mode and body.
pub(super) fn context_files(tar: &[u8]) -> Result<BTreeMap<String, (u32, Vec<u8>)>, RuntimeError> {
    use std::io::Read;
    let read = |e: std::io::Error| bad(format!("the build context: {e}"));
    let mut archive = tar::Archive::new(tar);
    let mut files = BTreeMap::new();
    for entry in archive.entries().map_err(read)? {
        let mut entry = entry.map_err(read)?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path().map_err(read)?.to_string_lossy().into_owned();
        let mode = entry.header().mode().map_err(read)?;
        let mut body = Vec::new();
        entry.read_to_end(&mut body).map_err(read)?;
        files.insert(path.trim_start_matches("./").to_owned(), (mode, body));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKERFILE: &str = r#"# a comment
ARG BASE
FROM ${BASE}
LABEL io.hostel.managed=1
ARG PKGS="a b"
RUN set -eux; \
    echo one; \
    \
    echo "$PKGS"
ENV LANG=C.UTF-8
COPY hostel-init /usr/local/sbin/hostel-init
# in between
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/sbin/hostel-init"]
"#;

    #[test]
    fn a_dockerfile_reads_as_a_plan() {
        let args = BTreeMap::from([("BASE".to_owned(), "hostel-base:bookworm".to_owned())]);
        let p = plan(DOCKERFILE, &args).unwrap();
        assert_eq!(p.from, "hostel-base:bookworm");
        assert_eq!(p.args["PKGS"], "a b");
        assert_eq!(p.env["LANG"], "C.UTF-8");
        assert_eq!(p.labels["io.hostel.managed"], "1");
        assert_eq!(
            p.steps,
            [
                Step::Run("set -eux;     echo one;         echo \"$PKGS\"".into()),
                Step::Copy {
                    source: "hostel-init".into(),
                    target: "/usr/local/sbin/hostel-init".into()
                },
            ]
        );
        assert_eq!(
            p.entrypoint.as_deref(),
            Some(
                &[
                    "/usr/bin/tini".to_owned(),
                    "--".into(),
                    "/usr/local/sbin/hostel-init".into()
                ][..]
            )
        );
        let props = properties(
            &BTreeMap::from([("hostel.env.OLD".to_owned(), "1".to_owned())]),
            &p,
            &BTreeMap::from([("io.hostel.image.version".to_owned(), "v1".to_owned())]),
            "hostel-workspace:v1",
        );
        assert_eq!(props["hostel.env.OLD"], "1");
        assert_eq!(props["hostel.env.LANG"], "C.UTF-8");
        assert_eq!(props["io.hostel.image.version"], "v1");
        assert_eq!(
            props[PROP_ENTRYPOINT],
            r#"["/usr/bin/tini","--","/usr/local/sbin/hostel-init"]"#
        );
    }

    #[test]
    fn hostels_own_dockerfiles_read() {
        let args = BTreeMap::from([("BASE".to_owned(), "b:1".to_owned())]);
        for text in [
            include_str!("../../../../image/Dockerfile"),
            include_str!("../../../../image/profiles/dev/Dockerfile"),
            include_str!("../../../../image/profiles/desktop/Dockerfile"),
        ] {
            let p = plan(text, &args).unwrap();
            assert_eq!(p.from, "b:1");
            assert!(p.steps.iter().any(|s| matches!(s, Step::Run(_))));
        }
    }

    #[test]
    fn what_hostel_cannot_build_is_refused() {
        assert!(plan("FROM x\nVOLUME /data\n", &BTreeMap::new()).is_err());
        assert!(plan("RUN true\n", &BTreeMap::new()).is_err());
        assert!(plan("FROM x\nENTRYPOINT /bin/sh\n", &BTreeMap::new()).is_err());
        assert!(plan("FROM x\nCOPY a b c\n", &BTreeMap::new()).is_err());
    }

    #[test]
    fn variables_are_substituted() {
        let vars = BTreeMap::from([("A".to_owned(), "1".to_owned())]);
        assert_eq!(substitute("${A}-$A-$B-$", &vars), "1-1--$");
        assert_eq!(substitute("x${A", &vars), "x${A");
    }
}
