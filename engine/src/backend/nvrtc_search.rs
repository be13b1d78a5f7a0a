//! Where to look for NVRTC: the folders, the order of the candidates, and the process's
//! setting. The engine reads no environment variable: the binaries' set-up
//! (`sextant_service::EngineArgs::init`) turns `--nvrtc`/`SEXTANT_NVRTC_LIB` and the
//! environment's toolkit and Python folders into an [`NvrtcSearch`] and installs it with
//! [`set_nvrtc_search`] before any device opens. Without one, the CUDA backend asks only the
//! loader for `libnvrtc.so.13` and `.so.12`. Always built (plain paths), so the set-up need not
//! know whether this build has CUDA; loading the library is [`super::nvrtc`]'s.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A `libnvrtc.so.N` file found by the search, before it is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// A path, or a bare soname for the loader to resolve.
    pub path: PathBuf,
    /// N, from the file name.
    pub major: u32,
}

/// Where to look: toolkit library folders and Python prefixes (folders holding
/// `lib/python3.*/site-packages`).
#[derive(Debug, Clone, Default)]
pub struct SearchRoots {
    pub library_folders: Vec<PathBuf>,
    pub python_prefixes: Vec<PathBuf>,
}

/// The entries of `folder` whose names `keep` accepts, sorted (none if it cannot be read).
pub fn entries_where(folder: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| keep(&n.to_string_lossy())))
        .collect();
    paths.sort();
    paths
}

/// The major version in a file name `libnvrtc.so.N` (not the builtins, not `.alt`, not
/// `libnvrtc.so.N.M.P`: the soname link is what a toolkit and a wheel both have).
fn major_of(name: &str) -> Option<u32> {
    name.strip_prefix("libnvrtc.so.")?.parse().ok()
}

fn push_folder(found: &mut Vec<Candidate>, folder: &Path) {
    for path in entries_where(folder, |name| major_of(name).is_some()) {
        let Some(major) = path
            .file_name()
            .and_then(|n| major_of(&n.to_string_lossy()))
        else {
            continue;
        };
        if !found.iter().any(|c| c.path == path) {
            found.push(Candidate { path, major });
        }
    }
}

/// Every `libnvrtc.so.N` under the roots, in the order of the roots (not yet by version).
pub fn find_candidates(roots: &SearchRoots) -> Vec<Candidate> {
    let mut found = Vec::new();
    for folder in &roots.library_folders {
        push_folder(&mut found, folder);
    }
    for prefix in &roots.python_prefixes {
        for python in entries_where(&prefix.join("lib"), |n| n.starts_with("python3")) {
            for site in ["site-packages", "dist-packages"] {
                // CUDA 13 wheels: nvidia/cu13/lib; CUDA 12 and 11: nvidia/cuda_nvrtc/lib.
                let nvidia = python.join(site).join("nvidia");
                for sub in entries_where(&nvidia, |n| n == "cuda_nvrtc" || n.starts_with("cu1")) {
                    push_folder(&mut found, &sub.join("lib"));
                }
            }
        }
    }
    found
}

/// The candidates worth trying for a driver of `driver_major` (`None`: no driver, as when
/// only compiling): newest major first, none newer than the driver, the loader's own
/// sonames last. Stable within a major, so the search order of the roots decides.
pub fn order(mut found: Vec<Candidate>, driver_major: Option<u32>) -> Vec<Candidate> {
    for major in [13, 12] {
        found.push(Candidate {
            path: format!("libnvrtc.so.{major}").into(),
            major,
        });
    }
    found.retain(|c| driver_major.is_none_or(|d| c.major <= d));
    found.sort_by_key(|c| std::cmp::Reverse(c.major));
    found
}

/// Where the CUDA backend looks for NVRTC.
#[derive(Debug, Clone, Default)]
pub struct NvrtcSearch {
    /// One library to use and no other (`--nvrtc`, `SEXTANT_NVRTC_LIB`).
    pub pinned: Option<PathBuf>,
    /// The folders to search when none is pinned.
    pub roots: SearchRoots,
}

static SEARCH: OnceLock<NvrtcSearch> = OnceLock::new();

/// Install the process's NVRTC search; call once, before a device opens (as rayon's global
/// pool is sized). A second call is refused: a backend may already have used the first.
pub fn set_nvrtc_search(search: NvrtcSearch) -> Result<(), NvrtcSearch> {
    SEARCH.set(search)
}

/// The process's NVRTC search: the one installed, or none (the loader's sonames only).
pub fn nvrtc_search() -> NvrtcSearch {
    SEARCH.get().cloned().unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }

    /// A toolkit with CUDA 12, a virtual environment with the 13 wheel, the user's Python
    /// with the 12 wheel; builtins, `.alt` and fully versioned files are not candidates.
    pub(crate) fn tree(test: &str) -> (PathBuf, SearchRoots) {
        let root =
            std::env::temp_dir().join(format!("sextant-nvrtc-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let toolkit = root.join("usr/local/cuda-12.4/lib64");
        touch(&toolkit.join("libnvrtc.so.12"));
        touch(&toolkit.join("libnvrtc.so.12.4.127"));
        touch(&toolkit.join("libnvrtc-builtins.so.12.4"));
        let venv = root.join("opt/torch/.venv");
        let cu13 = venv.join("lib/python3.12/site-packages/nvidia/cu13/lib");
        touch(&cu13.join("libnvrtc.so.13"));
        touch(&cu13.join("libnvrtc.alt.so.13"));
        touch(&cu13.join("libnvrtc-builtins.so.13.0"));
        let user = root.join("home/.local");
        touch(&user.join("lib/python3.11/dist-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12"));
        let roots = SearchRoots {
            library_folders: vec![toolkit, root.join("missing")],
            python_prefixes: vec![venv, user],
        };
        (root, roots)
    }

    #[test]
    fn the_search_finds_toolkit_and_wheel_layouts_of_12_and_13() {
        let (root, roots) = tree("layouts");
        let found = find_candidates(&roots);
        let names: Vec<(String, u32)> = found
            .iter()
            .map(|c| {
                let relative = c.path.strip_prefix(&root).unwrap();
                (relative.display().to_string(), c.major)
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("usr/local/cuda-12.4/lib64/libnvrtc.so.12".to_string(), 12),
                (
                    "opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib/libnvrtc.so.13"
                        .to_string(),
                    13
                ),
                (
                    "home/.local/lib/python3.11/dist-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12"
                        .to_string(),
                    12
                ),
            ]
        );
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn the_order_takes_the_newest_major_the_driver_can_follow() {
        let (root, roots) = tree("order");
        let found = find_candidates(&roots);
        let majors = |driver| {
            order(found.clone(), driver)
                .iter()
                .map(|c| (c.major, c.path.starts_with(&root)))
                .collect::<Vec<_>>()
        };
        // A CUDA 13 driver: the wheel's 13, the loader's 13, then the 12s in root order.
        assert_eq!(
            majors(Some(13)),
            vec![(13, true), (13, false), (12, true), (12, true), (12, false)]
        );
        // A CUDA 12 driver never gets NVRTC 13's PTX.
        assert_eq!(majors(Some(12)), vec![(12, true), (12, true), (12, false)]);
        assert!(majors(Some(11)).is_empty());
        std::fs::remove_dir_all(root).unwrap();
    }
}
