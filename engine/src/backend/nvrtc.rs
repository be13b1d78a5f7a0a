//! NVRTC, found and loaded by path, whatever its CUDA major version.
//!
//! cudarc binds NVRTC to one CUDA version chosen at build time (its `cuda-12090` feature
//! looks for `libnvrtc.so.12` and never `.so.13`) and keeps one library per process. The
//! machines Sextant meets have CUDA 12 or 13, from a toolkit or from NVIDIA's PyPI wheels
//! (`nvidia-cuda-nvrtc-cu12` puts `nvidia/cuda_nvrtc/lib/libnvrtc.so.12` in site-packages,
//! `nvidia-cuda-nvrtc` 13 puts `nvidia/cu13/lib/libnvrtc.so.13`), so this module owns the
//! search and the eight functions of NVRTC's C API that compiling to PTX needs. The PTX is
//! then loaded by cudarc's driver bindings, which the CUDA 12 and 13 drivers both serve.
//!
//! The order of the search: `SEXTANT_NVRTC_LIB` wins; then every `libnvrtc.so.N` in the
//! toolkit folders (`CUDA_HOME`, `CUDA_PATH`, `/usr/local/cuda*`), `LD_LIBRARY_PATH` and the
//! Python environments (`VIRTUAL_ENV`, `CONDA_PREFIX`, the `python3` folders on `PATH`, the
//! user's and pyenv's), newest major first but never newer than the driver (the driver cannot
//! load PTX from a newer NVRTC); last the loader's own `libnvrtc.so.13` and `.so.12`.

use std::ffi::{c_char, c_int, CStr, CString};
use std::path::{Path, PathBuf};

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

impl SearchRoots {
    /// This process's: its environment and the usual places.
    pub fn from_environment() -> Self {
        let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
        let mut library_folders = Vec::new();
        for name in ["CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"] {
            if let Some(root) = var(name) {
                library_folders.push(root.join("lib64"));
                library_folders.push(root.join("lib"));
            }
        }
        library_folders.push("/usr/local/cuda/lib64".into());
        // /usr/local/cuda-13.0 before /usr/local/cuda-12.4.
        let versioned = entries_where(Path::new("/usr/local"), |n| n.starts_with("cuda-"));
        library_folders.extend(versioned.into_iter().rev().map(|p| p.join("lib64")));
        if let Some(paths) = std::env::var_os("LD_LIBRARY_PATH") {
            library_folders.extend(std::env::split_paths(&paths));
        }
        library_folders.push("/usr/lib/x86_64-linux-gnu".into());
        library_folders.push("/usr/lib64".into());

        let mut python_prefixes = Vec::new();
        for name in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
            python_prefixes.extend(var(name));
        }
        // The Python that `python3` runs (a virtual environment's bin/ is its prefix's).
        if let Some(paths) = std::env::var_os("PATH") {
            for folder in std::env::split_paths(&paths) {
                if folder.join("python3").exists() {
                    if let Some(prefix) = folder.parent() {
                        python_prefixes.push(prefix.to_path_buf());
                    }
                }
            }
        }
        python_prefixes.push("/usr/local".into());
        python_prefixes.push("/usr".into());
        if let Some(home) = var("HOME") {
            python_prefixes.push(home.join(".local"));
            let versions = entries_where(&home.join(".pyenv/versions"), |_| true);
            python_prefixes.extend(versions.into_iter().rev());
        }
        SearchRoots {
            library_folders,
            python_prefixes,
        }
    }
}

/// The entries of `folder` whose names `keep` accepts, sorted (none if it cannot be read).
fn entries_where(folder: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
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

// NVRTC's C API: the few functions compiling to PTX needs. `nvrtcProgram` is an opaque
// pointer and every function returns an `nvrtcResult` (0 is success).
type Program = *mut std::ffi::c_void;
type VersionFn = unsafe extern "C" fn(*mut c_int, *mut c_int) -> c_int;
type CreateFn = unsafe extern "C" fn(
    *mut Program,
    *const c_char,
    *const c_char,
    c_int,
    *const *const c_char,
    *const *const c_char,
) -> c_int;
type CompileFn = unsafe extern "C" fn(Program, c_int, *const *const c_char) -> c_int;
type SizeFn = unsafe extern "C" fn(Program, *mut usize) -> c_int;
type TextFn = unsafe extern "C" fn(Program, *mut c_char) -> c_int;
type DestroyFn = unsafe extern "C" fn(*mut Program) -> c_int;
type ErrorStringFn = unsafe extern "C" fn(c_int) -> *const c_char;

/// One loaded NVRTC library.
pub struct Nvrtc {
    library: libloading::Library,
    /// Its `libnvrtc-builtins.so.N.M`, loaded from the same folder first: NVRTC 13 opens it
    /// by soname when compiling, and a wheel's folder is not on the loader path.
    _builtins: Vec<libloading::Library>,
    path: PathBuf,
    version: (u32, u32),
}

impl std::fmt::Debug for Nvrtc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nvrtc")
            .field("path", &self.path)
            .field("version", &self.version)
            .finish()
    }
}

impl Nvrtc {
    /// Load the library at `path` (or a soname) and ask its version.
    pub fn load(path: &Path) -> Result<Nvrtc, String> {
        let mut builtins = Vec::new();
        let folder = path.parent().unwrap_or(Path::new(""));
        for name in entries_where(folder, |n| n.starts_with("libnvrtc-builtins.so.")) {
            // SAFETY: as below; a failure here surfaces as NVRTC's own error later.
            if let Ok(library) = unsafe { libloading::Library::new(&name) } {
                builtins.push(library);
            }
        }
        // SAFETY: loading NVIDIA's NVRTC runs only its initialisers.
        let library = unsafe { libloading::Library::new(path) }
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut nvrtc = Nvrtc {
            library,
            _builtins: builtins,
            path: path.to_path_buf(),
            version: (0, 0),
        };
        let (mut major, mut minor) = (0, 0);
        // SAFETY: nvrtcVersion(int*, int*) writes two ints.
        let status =
            unsafe { nvrtc.symbol::<VersionFn>(b"nvrtcVersion\0")?(&mut major, &mut minor) };
        nvrtc.check(status, "nvrtcVersion")?;
        nvrtc.version = (major as u32, minor as u32);
        Ok(nvrtc)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// (major, minor), as the library reports it.
    pub fn version(&self) -> (u32, u32) {
        self.version
    }

    /// SAFETY: `T` must be the symbol's C signature.
    unsafe fn symbol<T: Copy>(&self, name: &[u8]) -> Result<T, String> {
        self.library
            .get::<T>(name)
            .map(|s| *s)
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }

    fn check(&self, status: c_int, what: &str) -> Result<(), String> {
        if status == 0 {
            return Ok(());
        }
        // SAFETY: nvrtcGetErrorString returns a static C string for any result code.
        let text = unsafe {
            self.symbol::<ErrorStringFn>(b"nvrtcGetErrorString\0")
                .ok()
                .map(|f| f(status))
                .filter(|p| !p.is_null())
                .map(|p| CStr::from_ptr(p).to_string_lossy().into_owned())
        };
        Err(format!(
            "{what}: {}",
            text.unwrap_or_else(|| format!("NVRTC error {status}"))
        ))
    }

    /// Compile CUDA C++ `source` to PTX with `options`; a failure carries NVRTC's log.
    pub fn compile_ptx(
        &self,
        source: &str,
        name: &str,
        options: &[String],
    ) -> Result<String, String> {
        let source = CString::new(source).map_err(|e| e.to_string())?;
        let name = CString::new(name).map_err(|e| e.to_string())?;
        let options: Vec<CString> = options
            .iter()
            .map(|o| CString::new(o.as_str()).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        let pointers: Vec<*const c_char> = options.iter().map(|o| o.as_ptr()).collect();
        // SAFETY: each symbol is called with its C signature; the program is created before
        // use and destroyed on every path below; buffers are sized from NVRTC's own answers.
        unsafe {
            let create = self.symbol::<CreateFn>(b"nvrtcCreateProgram\0")?;
            let compile = self.symbol::<CompileFn>(b"nvrtcCompileProgram\0")?;
            let log_size = self.symbol::<SizeFn>(b"nvrtcGetProgramLogSize\0")?;
            let log = self.symbol::<TextFn>(b"nvrtcGetProgramLog\0")?;
            let ptx_size = self.symbol::<SizeFn>(b"nvrtcGetPTXSize\0")?;
            let ptx = self.symbol::<TextFn>(b"nvrtcGetPTX\0")?;
            let destroy = self.symbol::<DestroyFn>(b"nvrtcDestroyProgram\0")?;

            let mut program: Program = std::ptr::null_mut();
            let status = create(
                &mut program,
                source.as_ptr(),
                name.as_ptr(),
                0,
                std::ptr::null(),
                std::ptr::null(),
            );
            self.check(status, "nvrtcCreateProgram")?;
            let text = |size_fn: SizeFn, text_fn: TextFn| -> Result<String, String> {
                let mut size = 0usize;
                self.check(size_fn(program, &mut size), "size")?;
                let mut buffer = vec![0u8; size.max(1)];
                self.check(text_fn(program, buffer.as_mut_ptr().cast()), "text")?;
                let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
                Ok(String::from_utf8_lossy(&buffer[..end]).into_owned())
            };
            let status = compile(program, pointers.len() as c_int, pointers.as_ptr());
            let result = if status == 0 {
                text(ptx_size, ptx)
            } else {
                let log = text(log_size, log).unwrap_or_default();
                Err(format!(
                    "{}\n{log}",
                    self.check(status, "nvrtcCompileProgram").unwrap_err()
                ))
            };
            destroy(&mut program);
            result
        }
    }
}

/// What the search found: the libraries it could load (with their versions) and why the
/// others failed.
#[derive(Debug, Default)]
pub struct Found {
    pub loaded: Vec<Nvrtc>,
    pub failed: Vec<String>,
}

/// Load NVRTC for a driver of `driver` (major, minor): `SEXTANT_NVRTC_LIB` if set, else the
/// newest library that the driver can follow. `None` as the driver: any (compiling only).
pub fn find(driver: Option<(u32, u32)>) -> Result<Nvrtc, String> {
    if let Some(path) = std::env::var_os("SEXTANT_NVRTC_LIB") {
        return Nvrtc::load(Path::new(&path)).map_err(|e| format!("SEXTANT_NVRTC_LIB: {e}"));
    }
    let mut tried = Vec::new();
    for candidate in order(
        find_candidates(&SearchRoots::from_environment()),
        driver.map(|d| d.0),
    ) {
        match Nvrtc::load(&candidate.path) {
            // A minor newer than the driver's writes a PTX version the driver cannot read.
            Ok(nvrtc) if driver.is_some_and(|d| nvrtc.version() > d) => tried.push(format!(
                "{} is NVRTC {}.{}, newer than the driver's CUDA {}.{}",
                candidate.path.display(),
                nvrtc.version().0,
                nvrtc.version().1,
                driver.unwrap().0,
                driver.unwrap().1
            )),
            Ok(nvrtc) => return Ok(nvrtc),
            Err(e) => tried.push(e),
        }
    }
    let driver = driver.map_or("none".to_string(), |(a, b)| format!("CUDA {a}.{b}"));
    Err(format!(
        "no usable NVRTC (libnvrtc.so.13 or .so.12) for driver {driver}: install the CUDA \
         toolkit or `pip install nvidia-cuda-nvrtc` (13) / `nvidia-cuda-nvrtc-cu12` (12), or \
         name the library in SEXTANT_NVRTC_LIB{}",
        if tried.is_empty() {
            String::new()
        } else {
            format!("; tried: {}", tried.join("; "))
        }
    ))
}

/// Every NVRTC the search can load, one per major version (newest major first): what
/// `sextant backends` reports and what CI compiles the kernels with.
pub fn find_all() -> Found {
    let mut found = Found::default();
    let mut candidates = order(find_candidates(&SearchRoots::from_environment()), None);
    if let Some(path) = std::env::var_os("SEXTANT_NVRTC_LIB") {
        candidates.insert(
            0,
            Candidate {
                path: path.into(),
                major: u32::MAX,
            },
        );
    }
    for candidate in candidates {
        if found
            .loaded
            .iter()
            .any(|n| n.version().0 == candidate.major)
        {
            continue;
        }
        match Nvrtc::load(&candidate.path) {
            Ok(nvrtc)
                if found
                    .loaded
                    .iter()
                    .any(|n| n.version().0 == nvrtc.version().0) => {}
            Ok(nvrtc) => found.loaded.push(nvrtc),
            // The loader's bare sonames are a last guess: their absence is no news.
            Err(_) if candidate.path.parent() == Some(Path::new("")) => {}
            Err(e) => found.failed.push(e),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }

    /// A toolkit with CUDA 12, a virtual environment with the 13 wheel, the user's Python
    /// with the 12 wheel; builtins, `.alt` and fully versioned files are not candidates.
    fn tree(test: &str) -> (PathBuf, SearchRoots) {
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

    #[test]
    fn a_file_that_is_not_a_library_is_refused_with_its_path() {
        let (root, roots) = tree("refused");
        let fake = &find_candidates(&roots)[0];
        let err = Nvrtc::load(&fake.path).unwrap_err();
        assert!(err.contains("libnvrtc.so.12"), "{err}");
        std::fs::remove_dir_all(root).unwrap();
    }
}
