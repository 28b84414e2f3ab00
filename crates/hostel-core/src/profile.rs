//! Image profiles: the workspace image comes in layers, each built on the one before. `base`
//! is the foundation (shell, tools, the init and the app supervisor); `dev` adds JupyterLab
//! with numpy, pandas and matplotlib, Node.js and VS Code in the browser (code-server);
//! `desktop` adds an XFCE desktop in TigerVNC, shown in the browser with noVNC, and a browser;
//! `docker` adds Docker, for workspaces that run containers of their own (engines that allow
//! it only: [`NESTING_LABEL`]).

use std::fmt;
use std::str::FromStr;

/// The label of an image whose workspaces run containers of their own (its value names the
/// engine inside, `docker`): they get the privileges for it where the engine can confine them,
/// and hostel refuses the image where it cannot.
pub const NESTING_LABEL: &str = "io.hostel.nesting";

/// One image profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImageProfile {
    /// The foundation image (`hostel-workspace:latest`).
    Base,
    /// + JupyterLab, Node.js, code-server (`hostel-workspace:dev`).
    Dev,
    /// + a desktop, a browser, noVNC (`hostel-workspace:desktop`).
    Desktop,
    /// The base + Docker (`hostel-workspace:docker`).
    Docker,
}

impl ImageProfile {
    /// Every profile, each after the one it builds on.
    pub const ALL: [ImageProfile; 4] = [
        ImageProfile::Base,
        ImageProfile::Dev,
        ImageProfile::Desktop,
        ImageProfile::Docker,
    ];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            ImageProfile::Base => "base",
            ImageProfile::Dev => "dev",
            ImageProfile::Desktop => "desktop",
            ImageProfile::Docker => "docker",
        }
    }

    /// The profile it builds on.
    pub fn parent(self) -> Option<ImageProfile> {
        match self {
            ImageProfile::Base => None,
            ImageProfile::Dev => Some(ImageProfile::Base),
            ImageProfile::Desktop => Some(ImageProfile::Dev),
            ImageProfile::Docker => Some(ImageProfile::Base),
        }
    }

    /// The moving tag of its newest build (`latest` for the base).
    pub fn tag(self) -> &'static str {
        match self {
            ImageProfile::Base => "latest",
            other => other.name(),
        }
    }

    /// Whether its workspaces run containers of their own (its image carries
    /// [`NESTING_LABEL`]).
    pub fn nests(self) -> bool {
        self == ImageProfile::Docker
    }

    /// The chain to build for this profile, the base first.
    pub fn chain(self) -> Vec<ImageProfile> {
        let mut chain = vec![self];
        let mut at = self;
        while let Some(p) = at.parent() {
            chain.insert(0, p);
            at = p;
        }
        chain
    }
}

impl fmt::Display for ImageProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A word that names no profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("image profile {0:?}: not one of base, dev, desktop, docker")]
pub struct UnknownProfile(pub String);

impl FromStr for ImageProfile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageProfile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownProfile(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_start_at_the_base() {
        assert_eq!(ImageProfile::Base.chain(), vec![ImageProfile::Base]);
        assert_eq!(
            ImageProfile::Desktop.chain(),
            vec![ImageProfile::Base, ImageProfile::Dev, ImageProfile::Desktop]
        );
    }

    #[test]
    fn names_tags_and_parsing() {
        for p in ImageProfile::ALL {
            assert_eq!(p.name().parse::<ImageProfile>(), Ok(p));
        }
        assert_eq!(ImageProfile::Base.tag(), "latest");
        assert_eq!(ImageProfile::Dev.tag(), "dev");
        assert_eq!(
            ImageProfile::Docker.chain(),
            vec![ImageProfile::Base, ImageProfile::Docker]
        );
        assert!("gpu".parse::<ImageProfile>().is_err());
    }
}
