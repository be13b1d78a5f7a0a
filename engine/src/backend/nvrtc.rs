//! NVRTC, loaded by path, whatever its CUDA major version.
//!
//! cudarc binds NVRTC to one CUDA version chosen at build time (its `cuda-12090` feature
//! looks for `libnvrtc.so.12` and never `.so.13`) and keeps one library per process. The
//! machines Sextant meets have CUDA 12 or 13, from a toolkit or from NVIDIA's PyPI wheels
//! (`nvidia-cuda-nvrtc-cu12` puts `nvidia/cuda_nvrtc/lib/libnvrtc.so.12` in site-packages,
//! `nvidia-cuda-nvrtc` 13 puts `nvidia/cu13/lib/libnvrtc.so.13`), so this module owns loading
//! and the eight functions of NVRTC's C API that compiling to PTX needs. The PTX is then
//! loaded by cudarc's driver bindings, which the CUDA 12 and 13 drivers both serve.
//!
//! Where to look is an [`NvrtcSearch`] ([`super::nvrtc_search`]), given by the caller: a
//! pinned library wins; otherwise every `libnvrtc.so.N` under its folders, newest major first
//! but never newer than the driver (the driver cannot load PTX from a newer NVRTC), and last
//! the loader's own `libnvrtc.so.13` and `.so.12`.

use std::ffi::{c_char, c_int, CStr, CString};
use std::path::{Path, PathBuf};

use super::nvrtc_search::{entries_where, find_candidates, order, Candidate, NvrtcSearch};

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

/// Load NVRTC for a driver of `driver` (major, minor): the pinned library if `search` has
/// one, else the newest library that the driver can follow. `None` as the driver: any
/// (compiling only).
pub fn find(search: &NvrtcSearch, driver: Option<(u32, u32)>) -> Result<Nvrtc, String> {
    if let Some(path) = &search.pinned {
        return Nvrtc::load(path).map_err(|e| format!("the pinned NVRTC (--nvrtc): {e}"));
    }
    let mut tried = Vec::new();
    for candidate in order(find_candidates(&search.roots), driver.map(|d| d.0)) {
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
         name the library with --nvrtc or SEXTANT_NVRTC_LIB{}",
        if tried.is_empty() {
            String::new()
        } else {
            format!("; tried: {}", tried.join("; "))
        }
    ))
}

/// Every NVRTC the search can load, one per major version (newest major first): what
/// `sextant backends` reports and what CI compiles the kernels with.
pub fn find_all(search: &NvrtcSearch) -> Found {
    let mut found = Found::default();
    let mut candidates = order(find_candidates(&search.roots), None);
    if let Some(path) = &search.pinned {
        candidates.insert(
            0,
            Candidate {
                path: path.clone(),
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
    use crate::backend::nvrtc_search::tests::tree;

    #[test]
    fn a_file_that_is_not_a_library_is_refused_with_its_path() {
        let (root, roots) = tree("refused");
        let fake = &find_candidates(&roots)[0];
        let err = Nvrtc::load(&fake.path).unwrap_err();
        assert!(err.contains("libnvrtc.so.12"), "{err}");
        std::fs::remove_dir_all(root).unwrap();
    }
}
