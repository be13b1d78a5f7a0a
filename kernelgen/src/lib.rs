//! The GPU arithmetic written once: functions in WGSL (`shaders/common.wgsl`), emitted as CUDA
//! C at build time, so the WGSL and CUDA kernels run the same Philox rounds, polynomials and
//! (as they land) plan and market steps without a second hand-written copy to keep in step.
//!
//! Why a generator of our own rather than CubeCL: the kernels' bits are the product (Philox
//! and the polynomials must match the CPU to the bit or to 1e-6), so the source stays the
//! WGSL that the WGSL backend already runs, and the translation is small enough to read. naga
//! (already in the build through wgpu) parses and validates the WGSL; this crate walks naga's
//! typed IR and prints C. CubeCL would bring its own compiler, runtime and host API for both
//! backends, and recompile time on the 2-core machines the project builds on.
//!
//! The subset: functions over scalars (`u32`, `i32`, `f32`, `f64`, `bool`), vectors of 2–4 of
//! them, structs and fixed-size arrays of these (arrays become wrapper structs, so they copy
//! as in WGSL), and `ptr<function, T>` arguments (C++ references); `let`, `var`, `if`,
//! `for`/`loop`/`while`, `break`, `continue`, `return`, calls, `select`, conversions and
//! bitcasts, and the math builtins the kernels use; module-scope `const` tables become C
//! globals. Storage buffers of scalars or vectors (`var<storage, read> name: array<T>;`, or
//! `read_write`) become the pointers of one C struct, `sx_globals`, which every function that
//! touches a buffer (itself or through a call) takes as a hidden first argument `sx_g`: the
//! plan kernel's month loop reads its plan's tables and writes its yearly samples this way.
//! Anything else (other module-scope variables, atomics, barriers, `switch`) is an error
//! naming the function and the construct, never a silent mistranslation: entry points and
//! reductions stay written by hand on each side, and hand the generated functions their
//! buffers and inputs. Where WGSL defines what C leaves undefined
//! (shifts by 32 or more, integer division by zero, signed overflow, out-of-range
//! float-to-int conversions), the WGSL source must stay clear of it, as the common functions
//! do.
//!
//! A function can be replaced on the CUDA side by a hand-written body ([`Override`]), for an
//! intrinsic WGSL lacks (`__umulhi` for Philox's products): the replacement must give the same
//! bits, which the tests check on the host.

use naga::{
    BinaryOperator, Expression, Handle, Literal, MathFunction, ScalarKind, Statement, TypeInner,
    UnaryOperator,
};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

/// A CUDA function written by hand in place of the generated one of the same name.
pub struct Override<'a> {
    pub name: &'a str,
    /// The whole CUDA definition.
    pub cuda: &'a str,
}

/// What every generated file starts with: the fixed-width type NVRTC lacks (it has no standard
/// headers), and the vector operators and indexing that WGSL has built in and CUDA's vector
/// types lack.
pub const PRELUDE: &str = r#"typedef unsigned int u32;

// A vector's component by a run-time index, as a value and as a place.
#define SEXTANT_AT(V, S)                                                                           \
    __device__ __forceinline__ S sx_at(V v, u32 i) { return (&v.x)[i]; }                          \
    __device__ __forceinline__ S& sx_at_ref(V& v, u32 i) { return (&v.x)[i]; }
SEXTANT_AT(uint2, u32)
SEXTANT_AT(uint4, u32)
SEXTANT_AT(int2, int)
SEXTANT_AT(int4, int)
SEXTANT_AT(float2, float)
SEXTANT_AT(float4, float)
SEXTANT_AT(double2, double)
SEXTANT_AT(double4, double)
#undef SEXTANT_AT

#define SEXTANT_OPS2(V, S, MAKE)                                                                   \
    __device__ __forceinline__ V operator+(V a, V b) { return MAKE(a.x + b.x, a.y + b.y); }       \
    __device__ __forceinline__ V operator-(V a, V b) { return MAKE(a.x - b.x, a.y - b.y); }       \
    __device__ __forceinline__ V operator*(V a, V b) { return MAKE(a.x * b.x, a.y * b.y); }       \
    __device__ __forceinline__ V operator*(S a, V b) { return MAKE(a * b.x, a * b.y); }           \
    __device__ __forceinline__ V operator*(V a, S b) { return MAKE(a.x * b, a.y * b); }           \
    __device__ __forceinline__ V operator-(V a) { return MAKE(-a.x, -a.y); }
#define SEXTANT_OPS4(V, S, MAKE)                                                                   \
    __device__ __forceinline__ V operator+(V a, V b) {                                            \
        return MAKE(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);                                  \
    }                                                                                             \
    __device__ __forceinline__ V operator-(V a, V b) {                                            \
        return MAKE(a.x - b.x, a.y - b.y, a.z - b.z, a.w - b.w);                                  \
    }                                                                                             \
    __device__ __forceinline__ V operator*(V a, V b) {                                            \
        return MAKE(a.x * b.x, a.y * b.y, a.z * b.z, a.w * b.w);                                  \
    }                                                                                             \
    __device__ __forceinline__ V operator*(S a, V b) { return MAKE(a * b.x, a * b.y, a * b.z, a * b.w); } \
    __device__ __forceinline__ V operator*(V a, S b) { return MAKE(a.x * b, a.y * b, a.z * b, a.w * b); } \
    __device__ __forceinline__ V operator-(V a) { return MAKE(-a.x, -a.y, -a.z, -a.w); }
SEXTANT_OPS2(uint2, u32, make_uint2)
SEXTANT_OPS2(int2, int, make_int2)
SEXTANT_OPS2(float2, float, make_float2)
SEXTANT_OPS2(double2, double, make_double2)
SEXTANT_OPS4(uint4, u32, make_uint4)
SEXTANT_OPS4(int4, int, make_int4)
SEXTANT_OPS4(float4, float, make_float4)
SEXTANT_OPS4(double4, double, make_double4)
#undef SEXTANT_OPS2
#undef SEXTANT_OPS4
"#;

/// What lets a host C++ compiler (g++, clang++) build the generated functions: CUDA's vector
/// types and intrinsics, spelled for the CPU. The tests' way to run the generated C without a
/// GPU, against the engine's own arithmetic; not used by any kernel.
pub const HOST_SHIM: &str = r#"#include <math.h>
#include <string.h>
#include <algorithm>
#define __device__
#define __forceinline__ inline
struct uint2 { unsigned int x, y; };
struct uint4 { unsigned int x, y, z, w; };
struct int2 { int x, y; };
struct int4 { int x, y, z, w; };
struct float2 { float x, y; };
struct float4 { float x, y, z, w; };
struct double2 { double x, y; };
struct double4 { double x, y, z, w; };
inline uint2 make_uint2(unsigned a, unsigned b) { return {a, b}; }
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }
inline int2 make_int2(int a, int b) { return {a, b}; }
inline int4 make_int4(int a, int b, int c, int d) { return {a, b, c, d}; }
inline float2 make_float2(float a, float b) { return {a, b}; }
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
inline double2 make_double2(double a, double b) { return {a, b}; }
inline double4 make_double4(double a, double b, double c, double d) { return {a, b, c, d}; }
inline unsigned __umulhi(unsigned a, unsigned b) {
    return (unsigned)(((unsigned long long)a * b) >> 32);
}
inline unsigned __float_as_uint(float x) { unsigned u; memcpy(&u, &x, 4); return u; }
inline float __uint_as_float(unsigned u) { float x; memcpy(&x, &u, 4); return x; }
inline int __float_as_int(float x) { int u; memcpy(&u, &x, 4); return u; }
inline float __int_as_float(int u) { float x; memcpy(&x, &u, 4); return x; }
using std::max;
using std::min;
"#;

/// Build `cuda` (generated C) with `main` into the executable `binary` with the host's C++
/// compiler (`$CXX`, else `c++`) and [`HOST_SHIM`], without contracting multiply-adds (as the
/// CUDA backend compiles with `--fmad=false`): the tests' way to run generated C on the CPU.
/// The error holds the compiler's output.
pub fn build_on_host(cuda: &str, main: &str, binary: &std::path::Path) -> Result<(), String> {
    let source = binary.with_extension("cpp");
    std::fs::write(&source, format!("{HOST_SHIM}\n{cuda}\n{main}"))
        .map_err(|e| format!("writing {}: {e}", source.display()))?;
    let compiler = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let built = std::process::Command::new(&compiler)
        .args(["-O2", "-ffp-contract=off", "-std=c++17", "-o"])
        .arg(binary)
        .arg(&source)
        .output()
        .map_err(|e| {
            format!("{compiler} (a host C++ compiler; scripts/install-deps.sh installs g++): {e}")
        })?;
    if built.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{compiler} failed:\n{}",
            String::from_utf8_lossy(&built.stderr)
        ))
    }
}

/// CUDA C for every function of `wgsl` (in source order), after [`PRELUDE`], with the
/// functions named in `overrides` replaced by their hand-written bodies. The error names the
/// function and what falls outside the subset, or quotes naga's parse or validation error.
pub fn wgsl_to_cuda(wgsl: &str, overrides: &[Override]) -> Result<String, String> {
    let module = naga::front::wgsl::parse_str(wgsl).map_err(|e| e.emit_to_string(wgsl))?;
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .map_err(|e| format!("{e:?}"))?;
    if !module.entry_points.is_empty() {
        return Err("entry points are written by hand on each side, not generated".into());
    }
    let mut out = String::new();
    out.push_str("// Generated by sextant-kernelgen from WGSL: edit the WGSL, not this file.\n\n");
    out.push_str(PRELUDE);
    out.push('\n');
    out.push_str(&type_definitions(&module)?);
    out.push_str(&constant_definitions(&module)?);
    out.push_str(&buffer_definitions(&module)?);
    // The functions that read or write a buffer, directly or through a call: each takes the
    // buffers as a hidden first argument.
    let buffered: HashSet<Handle<naga::Function>> = module
        .functions
        .iter()
        .filter(|&(h, _)| {
            module
                .global_variables
                .iter()
                .any(|(g, _)| !info[h][g].is_empty())
        })
        .map(|(h, _)| h)
        .collect();
    let mut used = HashSet::new();
    for (handle, function) in module.functions.iter() {
        let name = function.name.clone().unwrap_or_default();
        out.push('\n');
        if let Some(o) = overrides.iter().find(|o| o.name == name) {
            used.insert(o.name);
            out.push_str(o.cuda.trim_end());
            out.push('\n');
            continue;
        }
        let writer = FunctionWriter::new(&module, &info[handle], handle, function, &buffered)
            .map_err(|e| format!("fn {name}: {e}"))?;
        writer
            .write(&mut out)
            .map_err(|e| format!("fn {name}: {e}"))?;
    }
    if let Some(o) = overrides.iter().find(|o| !used.contains(o.name)) {
        return Err(format!("override {} names no function of the WGSL", o.name));
    }
    Ok(out)
}

/// The C spelling of type `ty`: structs by their WGSL name, fixed-size arrays as a wrapper
/// struct (`sx_array_double_8 { double v[8]; }`) so that they copy and return by value as in
/// WGSL.
fn type_name(module: &naga::Module, ty: Handle<naga::Type>) -> Result<String, String> {
    let t = &module.types[ty];
    match t.inner {
        TypeInner::Struct { .. } => Ok(c_identifier(
            t.name.as_deref().ok_or("a struct without a name")?,
        )),
        TypeInner::Array { base, size, .. } => {
            let naga::ArraySize::Constant(n) = size else {
                return Err("arrays without a constant size".into());
            };
            Ok(format!("sx_array_{}_{n}", type_name(module, base)?))
        }
        ref inner => c_type(inner),
    }
}

/// The C spelling of a resolved expression type.
fn resolution_name(
    module: &naga::Module,
    resolution: &naga::proc::TypeResolution,
) -> Result<String, String> {
    match resolution {
        naga::proc::TypeResolution::Handle(h) => type_name(module, *h),
        naga::proc::TypeResolution::Value(inner) => c_type(inner),
    }
}

/// The module's constant tables (`const DIVISORS = array<f64, 49>(…)`) as C globals; scalar
/// constants are written where they are used instead.
fn constant_definitions(module: &naga::Module) -> Result<String, String> {
    let mut out = String::new();
    for (_, constant) in module.constants.iter() {
        if matches!(
            module.global_expressions[constant.init],
            Expression::Literal(_)
        ) {
            continue;
        }
        let name = c_identifier(constant.name.as_deref().ok_or("an unnamed constant")?);
        let _ = writeln!(
            out,
            "static __device__ const {} {name} = {};",
            type_name(module, constant.ty)?,
            constant_value(module, constant.init)?
        );
    }
    Ok(out)
}

/// A constant expression of the module scope as a C initialiser.
fn constant_value(module: &naga::Module, h: Handle<Expression>) -> Result<String, String> {
    match module.global_expressions[h] {
        Expression::Literal(l) => literal(l),
        Expression::Compose { ty, ref components } => {
            let parts = components
                .iter()
                .map(|&c| constant_value(module, c))
                .collect::<Result<Vec<_>, _>>()?
                .join(", ");
            let name = type_name(module, ty)?;
            Ok(match module.types[ty].inner {
                TypeInner::Array { .. } => format!("{name}{{{{{parts}}}}}"),
                TypeInner::Vector { .. } => format!("make_{name}({parts})"),
                _ => format!("{name}{{{parts}}}"),
            })
        }
        Expression::ZeroValue(ty) => Ok(format!("{}{{}}", type_name(module, ty)?)),
        Expression::Constant(c) => constant_value(module, module.constants[c].init),
        ref other => Err(format!("the constant initialiser {other:?}")),
    }
}

/// The module's storage buffers (`var<storage, read> name: array<T>;`, or `read_write`) as
/// the members of `struct sx_globals`, one pointer each (to `const T` when read-only): the
/// hand-written CUDA entry point fills it from its arguments and hands it to the generated
/// functions that use a buffer, as their first argument `sx_g`. Any other module-scope
/// variable (uniform, private, workgroup, a buffer that is not a runtime-sized array of
/// scalars or vectors) is outside the subset.
fn buffer_definitions(module: &naga::Module) -> Result<String, String> {
    if module.global_variables.is_empty() {
        return Ok(String::new());
    }
    let mut out = String::from("struct sx_globals {\n");
    for (_, global) in module.global_variables.iter() {
        let name = global
            .name
            .as_deref()
            .ok_or("an unnamed module-scope variable")?;
        let naga::AddressSpace::Storage { access } = global.space else {
            return Err(format!(
                "var {name}: module-scope variables other than storage buffers"
            ));
        };
        let TypeInner::Array {
            base,
            size: naga::ArraySize::Dynamic,
            ..
        } = module.types[global.ty].inner
        else {
            return Err(format!(
                "var {name}: storage buffers other than runtime-sized arrays"
            ));
        };
        let element = c_type(&module.types[base].inner).map_err(|e| format!("var {name}: {e}"))?;
        let constness = if access.contains(naga::StorageAccess::STORE) {
            ""
        } else {
            "const "
        };
        let _ = writeln!(out, "    {constness}{element}* {};", c_identifier(name));
    }
    out.push_str("};\n");
    Ok(out)
}

/// The C definitions of the module's structs and arrays, each after what it holds.
fn type_definitions(module: &naga::Module) -> Result<String, String> {
    let mut out = String::new();
    for (h, t) in module.types.iter() {
        match t.inner {
            TypeInner::Struct { ref members, .. } => {
                let _ = writeln!(out, "struct {} {{", type_name(module, h)?);
                for m in members {
                    let name = c_identifier(m.name.as_deref().ok_or("an unnamed member")?);
                    let _ = writeln!(out, "    {} {name};", type_name(module, m.ty)?);
                }
                out.push_str("};\n");
            }
            TypeInner::Array { base, size, .. } => {
                let naga::ArraySize::Constant(n) = size else {
                    continue;
                };
                let _ = writeln!(
                    out,
                    "struct {} {{\n    {} v[{n}];\n}};",
                    type_name(module, h)?,
                    type_name(module, base)?
                );
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The C spelling of a scalar or vector type.
fn c_type(inner: &TypeInner) -> Result<String, String> {
    match *inner {
        TypeInner::Scalar(s) => scalar_name(s.kind, s.width).map(str::to_string),
        TypeInner::Vector { size, scalar } => {
            let base = match (scalar.kind, scalar.width) {
                (ScalarKind::Uint, 4) => "uint",
                (ScalarKind::Sint, 4) => "int",
                (ScalarKind::Float, 4) => "float",
                (ScalarKind::Float, 8) => "double",
                _ => return Err(format!("vectors of {scalar:?}")),
            };
            Ok(format!("{base}{}", size as u8))
        }
        ref other => Err(format!("the type {other:?}")),
    }
}

fn scalar_name(kind: ScalarKind, width: u8) -> Result<&'static str, String> {
    Ok(match (kind, width) {
        (ScalarKind::Uint, 4) => "u32",
        (ScalarKind::Sint, 4) => "int",
        (ScalarKind::Float, 4) => "float",
        (ScalarKind::Float, 8) => "double",
        (ScalarKind::Bool, _) => "bool",
        _ => return Err(format!("the scalar {kind:?}{}", width * 8)),
    })
}

const COMPONENTS: [&str; 4] = ["x", "y", "z", "w"];

struct FunctionWriter<'a> {
    module: &'a naga::Module,
    info: &'a naga::valid::FunctionInfo,
    function: &'a naga::Function,
    /// Expressions given a C variable of their own where they are emitted.
    baked: HashMap<Handle<Expression>, String>,
    /// Local variables' C names.
    locals: HashMap<Handle<naga::LocalVariable>, String>,
    arguments: Vec<String>,
    /// The functions that take the buffers (`sx_g`) as their first argument.
    buffered: &'a HashSet<Handle<naga::Function>>,
    /// Whether this one does.
    takes_buffers: bool,
}

impl<'a> FunctionWriter<'a> {
    fn new(
        module: &'a naga::Module,
        info: &'a naga::valid::FunctionInfo,
        handle: Handle<naga::Function>,
        function: &'a naga::Function,
        buffered: &'a HashSet<Handle<naga::Function>>,
    ) -> Result<Self, String> {
        // A WGSL name may repeat across scopes (and naga hoists every `var` to the top), so
        // a name used twice gets its handle's index appended.
        let mut count: HashMap<&str, usize> = HashMap::new();
        let arguments: Vec<&str> = function
            .arguments
            .iter()
            .map(|a| a.name.as_deref().unwrap_or("arg"))
            .collect();
        for name in arguments
            .iter()
            .copied()
            .chain(
                function
                    .local_variables
                    .iter()
                    .map(|(_, v)| v.name.as_deref().unwrap_or("v")),
            )
            .chain(
                // naga names the arguments' expressions too: counted once, as arguments.
                function
                    .named_expressions
                    .iter()
                    .filter(|(h, _)| {
                        !matches!(function.expressions[**h], Expression::FunctionArgument(_))
                    })
                    .map(|(_, name)| name.as_str()),
            )
        {
            *count.entry(name).or_default() += 1;
        }
        let unique = |name: &str, index: usize, tag: &str| {
            let name = c_identifier(name);
            if count.get(name.as_str()).copied().unwrap_or(0) > 1 {
                format!("{name}_{tag}{index}")
            } else {
                name
            }
        };
        let locals = function
            .local_variables
            .iter()
            .map(|(h, v)| (h, unique(v.name.as_deref().unwrap_or("v"), h.index(), "v")))
            .collect();
        // Only what an `Emit` statement covers (or a call returns) can be given a variable;
        // constant expressions are written where they are used.
        let mut emitted = HashSet::new();
        collect_emitted(&function.body, &mut emitted);
        let mut baked = HashMap::new();
        for (h, expression) in function.expressions.iter() {
            if !emitted.contains(&h) && !matches!(expression, Expression::CallResult(_)) {
                continue;
            }
            if let Some(name) = function.named_expressions.get(&h) {
                baked.insert(h, unique(name, h.index(), "e"));
                continue;
            }
            let many = info[h].ref_count > 1;
            let must = matches!(
                expression,
                Expression::Load { .. } | Expression::CallResult(_)
            );
            if must || (many && !is_pointer(info, module, h) && !is_leaf(expression)) {
                baked.insert(h, format!("_e{}", h.index()));
            }
            // A vector read component by component is read once, into a variable.
            match *expression {
                Expression::Compose { ref components, .. } => {
                    for &c in components {
                        if matches!(
                            info[c].ty.inner_with(&module.types),
                            TypeInner::Vector { .. }
                        ) && emitted.contains(&c)
                        {
                            baked.entry(c).or_insert_with(|| format!("_e{}", c.index()));
                        }
                    }
                }
                Expression::Splat { value: v, .. } | Expression::Swizzle { vector: v, .. }
                    if emitted.contains(&v) =>
                {
                    baked.entry(v).or_insert_with(|| format!("_e{}", v.index()));
                }
                _ => {}
            }
        }
        Ok(FunctionWriter {
            module,
            info,
            function,
            baked,
            locals,
            arguments: arguments
                .iter()
                .enumerate()
                .map(|(i, a)| unique(a, i, "a"))
                .collect(),
            buffered,
            takes_buffers: buffered.contains(&handle),
        })
    }

    fn type_of(&self, h: Handle<Expression>) -> &TypeInner {
        self.info[h].ty.inner_with(&self.module.types)
    }

    fn write(&self, out: &mut String) -> Result<(), String> {
        let f = self.function;
        let result = match &f.result {
            Some(r) => type_name(self.module, r.ty)?,
            None => "void".into(),
        };
        let arguments = f
            .arguments
            .iter()
            .zip(&self.arguments)
            .map(|(a, name)| {
                // A `ptr<function, T>` argument is a C++ reference: the callee's stores reach
                // the caller's variable, as in WGSL.
                Ok(match self.module.types[a.ty].inner {
                    TypeInner::Pointer { base, space } => {
                        if space != naga::AddressSpace::Function {
                            return Err(format!("pointers into {space:?}"));
                        }
                        format!("{}& {name}", type_name(self.module, base)?)
                    }
                    _ => format!("{} {name}", type_name(self.module, a.ty)?),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let arguments: Vec<String> = self
            .takes_buffers
            .then(|| "const sx_globals& sx_g".to_string())
            .into_iter()
            .chain(arguments)
            .collect();
        let _ = writeln!(
            out,
            "__device__ __forceinline__ {result} {}({}) {{",
            c_identifier(f.name.as_deref().unwrap_or("f")),
            arguments.join(", ")
        );
        for (h, v) in f.local_variables.iter() {
            let ty = type_name(self.module, v.ty)?;
            let init = match v.init {
                Some(e) => self.expression(e)?,
                None => format!("{ty}{{}}"),
            };
            let _ = writeln!(out, "    {ty} {} = {init};", self.locals[&h]);
        }
        self.block(out, &f.body, 1)?;
        out.push_str("}\n");
        Ok(())
    }

    fn block(&self, out: &mut String, block: &naga::Block, depth: usize) -> Result<(), String> {
        let pad = "    ".repeat(depth);
        for statement in block.iter() {
            match statement {
                Statement::Emit(range) => {
                    for h in range.clone() {
                        if let Some(name) = self.baked.get(&h) {
                            if is_pointer(self.info, self.module, h) {
                                continue;
                            }
                            let ty = resolution_name(self.module, &self.info[h].ty)?;
                            let value = self.value(h)?;
                            let _ = writeln!(out, "{pad}const {ty} {name} = {value};");
                        }
                    }
                }
                Statement::Block(inner) => {
                    let _ = writeln!(out, "{pad}{{");
                    self.block(out, inner, depth + 1)?;
                    let _ = writeln!(out, "{pad}}}");
                }
                Statement::If {
                    condition,
                    accept,
                    reject,
                } => {
                    let _ = writeln!(out, "{pad}if ({}) {{", self.expression(*condition)?);
                    self.block(out, accept, depth + 1)?;
                    if !reject.is_empty() {
                        let _ = writeln!(out, "{pad}}} else {{");
                        self.block(out, reject, depth + 1)?;
                    }
                    let _ = writeln!(out, "{pad}}}");
                }
                Statement::Loop {
                    body,
                    continuing,
                    break_if,
                } => {
                    // The continuing block runs before every iteration but the first, so that
                    // `continue` in the body reaches it, as in WGSL.
                    let simple = continuing.is_empty() && break_if.is_none();
                    if simple {
                        let _ = writeln!(out, "{pad}while (true) {{");
                    } else {
                        let flag = format!("first_{}", depth);
                        let _ = writeln!(out, "{pad}{{\n{pad}bool {flag} = true;");
                        let _ = writeln!(out, "{pad}while (true) {{");
                        let _ = writeln!(out, "{pad}    if (!{flag}) {{");
                        self.block(out, continuing, depth + 2)?;
                        if let Some(b) = break_if {
                            let _ = writeln!(
                                out,
                                "{pad}        if ({}) {{ break; }}",
                                self.expression(*b)?
                            );
                        }
                        let _ = writeln!(out, "{pad}    }}\n{pad}    {flag} = false;");
                    }
                    self.block(out, body, depth + 1)?;
                    let _ = writeln!(out, "{pad}}}");
                    if !simple {
                        let _ = writeln!(out, "{pad}}}");
                    }
                }
                Statement::Break => {
                    let _ = writeln!(out, "{pad}break;");
                }
                Statement::Continue => {
                    let _ = writeln!(out, "{pad}continue;");
                }
                Statement::Return { value } => match value {
                    Some(v) => {
                        let _ = writeln!(out, "{pad}return {};", self.expression(*v)?);
                    }
                    None => {
                        let _ = writeln!(out, "{pad}return;");
                    }
                },
                Statement::Store { pointer, value } => {
                    let _ = writeln!(
                        out,
                        "{pad}{} = {};",
                        self.place(*pointer)?,
                        self.expression(*value)?
                    );
                }
                Statement::Call {
                    function,
                    arguments,
                    result,
                } => {
                    let callee = &self.module.functions[*function];
                    let name = c_identifier(callee.name.as_deref().unwrap_or("f"));
                    let buffers = self
                        .buffered
                        .contains(function)
                        .then(|| Ok("sx_g".to_string()));
                    let arguments = buffers
                        .into_iter()
                        .chain(arguments.iter().map(|&a| self.expression(a)))
                        .collect::<Result<Vec<_>, _>>()?
                        .join(", ");
                    match result {
                        Some(r) => {
                            let ty = resolution_name(self.module, &self.info[*r].ty)?;
                            let _ = writeln!(
                                out,
                                "{pad}const {ty} {} = {name}({arguments});",
                                self.baked[r]
                            );
                        }
                        None => {
                            let _ = writeln!(out, "{pad}{name}({arguments});");
                        }
                    }
                }
                other => return Err(format!("the statement {other:?}")),
            }
        }
        Ok(())
    }

    /// An expression where it is used: its variable when baked, else its value.
    fn expression(&self, h: Handle<Expression>) -> Result<String, String> {
        match self.baked.get(&h) {
            Some(name) if !is_pointer(self.info, self.module, h) => Ok(name.clone()),
            _ => self.value(h),
        }
    }

    /// The C lvalue a pointer expression points at.
    fn place(&self, h: Handle<Expression>) -> Result<String, String> {
        match self.function.expressions[h] {
            Expression::LocalVariable(v) => Ok(self.locals[&v].clone()),
            Expression::FunctionArgument(i) => Ok(self.arguments[i as usize].clone()),
            Expression::GlobalVariable(g) => Ok(format!(
                "sx_g.{}",
                c_identifier(
                    self.module.global_variables[g]
                        .name
                        .as_deref()
                        .unwrap_or("g")
                )
            )),
            Expression::AccessIndex { base, index } => Ok(format!(
                "{}{}",
                self.place(base)?,
                self.member(base, index)?
            )),
            Expression::Access { base, index } => {
                let (place, index) = (self.place(base)?, self.expression(index)?);
                Ok(match self.pointee(base) {
                    // A buffer: a C pointer.
                    TypeInner::Array {
                        size: naga::ArraySize::Dynamic,
                        ..
                    } => format!("{place}[{index}]"),
                    TypeInner::Array { .. } => format!("{place}.v[{index}]"),
                    _ => format!("sx_at_ref({place}, {index})"),
                })
            }
            ref other => Err(format!("the pointer {other:?}")),
        }
    }

    /// The type a pointer expression points at (or the expression's own, for a value).
    fn pointee(&self, h: Handle<Expression>) -> &TypeInner {
        match *self.type_of(h) {
            TypeInner::Pointer { base, .. } => &self.module.types[base].inner,
            ref other => other,
        }
    }

    /// `.x`, `.name` or `.v[k]`: member `index` of `base` (a value or a pointer).
    fn member(&self, base: Handle<Expression>, index: u32) -> Result<String, String> {
        Ok(match *self.pointee(base) {
            TypeInner::Struct { ref members, .. } => {
                let m = members.get(index as usize).ok_or("a member out of range")?;
                format!(".{}", c_identifier(m.name.as_deref().unwrap_or("m")))
            }
            TypeInner::Array {
                size: naga::ArraySize::Dynamic,
                ..
            } => format!("[{index}]"),
            TypeInner::Array { .. } => format!(".v[{index}]"),
            TypeInner::Pointer { .. } | TypeInner::ValuePointer { .. } => {
                return Err("pointers to pointers".into())
            }
            _ => format!(".{}", component(index)?),
        })
    }

    fn value(&self, h: Handle<Expression>) -> Result<String, String> {
        let e = |x| self.expression(x);
        Ok(match self.function.expressions[h] {
            Expression::Literal(l) => literal(l)?,
            Expression::Constant(c) => {
                let constant = &self.module.constants[c];
                match self.module.global_expressions[constant.init] {
                    Expression::Literal(l) => literal(l)?,
                    // A table: defined once at the top (`constant_definitions`).
                    _ => c_identifier(constant.name.as_deref().ok_or("an unnamed constant")?),
                }
            }
            Expression::ZeroValue(ty) => format!("{}{{}}", type_name(self.module, ty)?),
            Expression::Compose { ty, ref components } => {
                let inner = &self.module.types[ty].inner;
                match inner {
                    TypeInner::Vector { .. } => {}
                    TypeInner::Struct { .. } | TypeInner::Array { .. } => {
                        let parts = components
                            .iter()
                            .map(|&c| e(c))
                            .collect::<Result<Vec<_>, _>>()?
                            .join(", ");
                        let name = type_name(self.module, ty)?;
                        return Ok(match inner {
                            TypeInner::Array { .. } => format!("{name}{{{{{parts}}}}}"),
                            _ => format!("{name}{{{parts}}}"),
                        });
                    }
                    _ => return Err(format!("composing {inner:?}")),
                }
                let mut parts = Vec::new();
                for &c in components {
                    match *self.type_of(c) {
                        TypeInner::Vector { size, .. } => {
                            let v = e(c)?;
                            for c in &COMPONENTS[..size as usize] {
                                parts.push(format!("{v}.{c}"));
                            }
                        }
                        _ => parts.push(e(c)?),
                    }
                }
                format!("make_{}({})", c_type(inner)?, parts.join(", "))
            }
            Expression::Splat { size, value } => {
                let TypeInner::Scalar(s) = *self.type_of(value) else {
                    return Err("splatting a non-scalar".into());
                };
                let v = e(value)?;
                let ty = c_type(&TypeInner::Vector { size, scalar: s })?;
                format!("make_{ty}({})", vec![v; size as usize].join(", "))
            }
            Expression::Swizzle {
                size,
                vector,
                pattern,
            } => {
                let TypeInner::Vector { scalar, .. } = *self.type_of(vector) else {
                    return Err("swizzling a non-vector".into());
                };
                let v = e(vector)?;
                let ty = c_type(&TypeInner::Vector { size, scalar })?;
                let parts: Vec<String> = pattern[..size as usize]
                    .iter()
                    .map(|&p| format!("{v}.{}", COMPONENTS[p as usize]))
                    .collect();
                format!("make_{ty}({})", parts.join(", "))
            }
            Expression::AccessIndex { base, index } => {
                if is_pointer(self.info, self.module, h) {
                    return self.place(h);
                }
                format!("{}{}", e(base)?, self.member(base, index)?)
            }
            Expression::Access { base, index } => {
                if is_pointer(self.info, self.module, h) {
                    return self.place(h);
                }
                match self.pointee(base) {
                    TypeInner::Array { .. } => format!("{}.v[{}]", e(base)?, e(index)?),
                    _ => format!("sx_at({}, {})", e(base)?, e(index)?),
                }
            }
            Expression::FunctionArgument(i) => self.arguments[i as usize].clone(),
            Expression::LocalVariable(_) => self.place(h)?,
            Expression::Load { pointer } => self.place(pointer)?,
            Expression::Unary { op, expr } => {
                let op = match op {
                    UnaryOperator::Negate => "-",
                    UnaryOperator::LogicalNot => "!",
                    UnaryOperator::BitwiseNot => "~",
                };
                format!("({op}{})", e(expr)?)
            }
            Expression::Binary { op, left, right } => {
                let float = matches!(scalar_kind(self.type_of(left)), Some(ScalarKind::Float));
                let (l, r) = (e(left)?, e(right)?);
                if op == BinaryOperator::Modulo && float {
                    let f = if self.type_of(left) == &TypeInner::Scalar(naga::Scalar::F32) {
                        "fmodf"
                    } else {
                        "fmod"
                    };
                    return Ok(format!("{f}({l}, {r})"));
                }
                let op = match op {
                    BinaryOperator::Add => "+",
                    BinaryOperator::Subtract => "-",
                    BinaryOperator::Multiply => "*",
                    BinaryOperator::Divide => "/",
                    BinaryOperator::Modulo => "%",
                    BinaryOperator::Equal => "==",
                    BinaryOperator::NotEqual => "!=",
                    BinaryOperator::Less => "<",
                    BinaryOperator::LessEqual => "<=",
                    BinaryOperator::Greater => ">",
                    BinaryOperator::GreaterEqual => ">=",
                    BinaryOperator::And => "&",
                    BinaryOperator::ExclusiveOr => "^",
                    BinaryOperator::InclusiveOr => "|",
                    BinaryOperator::LogicalAnd => "&&",
                    BinaryOperator::LogicalOr => "||",
                    BinaryOperator::ShiftLeft => "<<",
                    BinaryOperator::ShiftRight => ">>",
                };
                format!("({l} {op} {r})")
            }
            Expression::Select {
                condition,
                accept,
                reject,
            } => {
                if !matches!(self.type_of(condition), TypeInner::Scalar(_)) {
                    return Err("select with a vector condition".into());
                }
                format!("({} ? {} : {})", e(condition)?, e(accept)?, e(reject)?)
            }
            Expression::Math {
                fun,
                arg,
                arg1,
                arg2,
                ..
            } => {
                let ty = self.type_of(arg);
                let TypeInner::Scalar(s) = *ty else {
                    return Err(format!("{fun:?} of a vector"));
                };
                let (a, b, c) = (e(arg)?, arg1.map(e).transpose()?, arg2.map(e).transpose()?);
                let float = s.kind == ScalarKind::Float;
                // C's names: `floorf` for f32, `floor` for f64 (and for the integer `min`).
                let suffix = if float && s.width == 4 { "f" } else { "" };
                let named = |name: &str| -> String {
                    let args: Vec<&str> = [Some(&a), b.as_ref(), c.as_ref()]
                        .into_iter()
                        .flatten()
                        .map(String::as_str)
                        .collect();
                    format!("{name}{suffix}({})", args.join(", "))
                };
                match fun {
                    MathFunction::Abs if float => named("fabs"),
                    MathFunction::Abs if s.kind == ScalarKind::Sint => named("abs"),
                    MathFunction::Abs => a,
                    MathFunction::Min if float => named("fmin"),
                    MathFunction::Max if float => named("fmax"),
                    MathFunction::Min => named("min"),
                    MathFunction::Max => named("max"),
                    MathFunction::Clamp => {
                        let (lo, hi) = (b.unwrap_or_default(), c.unwrap_or_default());
                        if float {
                            format!("fmin{suffix}(fmax{suffix}({a}, {lo}), {hi})")
                        } else {
                            format!("min(max({a}, {lo}), {hi})")
                        }
                    }
                    MathFunction::Floor => named("floor"),
                    MathFunction::Ceil => named("ceil"),
                    MathFunction::Trunc => named("trunc"),
                    MathFunction::Round => named("rint"),
                    MathFunction::Sqrt => named("sqrt"),
                    MathFunction::Exp => named("exp"),
                    MathFunction::Exp2 => named("exp2"),
                    MathFunction::Log => named("log"),
                    MathFunction::Log2 => named("log2"),
                    MathFunction::Pow => named("pow"),
                    MathFunction::Fma => named("fma"),
                    MathFunction::Sin => named("sin"),
                    MathFunction::Cos => named("cos"),
                    other => return Err(format!("the builtin {other:?}")),
                }
            }
            Expression::As {
                expr,
                kind,
                convert,
            } => {
                let from = self.type_of(expr);
                let TypeInner::Scalar(s) = *from else {
                    return Err("converting a vector".into());
                };
                let v = e(expr)?;
                match convert {
                    Some(width) => format!("(({}){v})", scalar_name(kind, width)?),
                    None => match (s.kind, kind) {
                        (ScalarKind::Float, ScalarKind::Uint) => format!("__float_as_uint({v})"),
                        (ScalarKind::Float, ScalarKind::Sint) => format!("__float_as_int({v})"),
                        (ScalarKind::Uint, ScalarKind::Float) => format!("__uint_as_float({v})"),
                        (ScalarKind::Sint, ScalarKind::Float) => format!("__int_as_float({v})"),
                        (ScalarKind::Uint, ScalarKind::Sint) => format!("((int){v})"),
                        (ScalarKind::Sint, ScalarKind::Uint) => format!("((u32){v})"),
                        (a, b) if a == b => v,
                        (a, b) => return Err(format!("bitcast from {a:?} to {b:?}")),
                    },
                }
            }
            Expression::CallResult(_) => self.baked[&h].clone(),
            ref other => return Err(format!("the expression {other:?}")),
        })
    }
}

/// Every expression an `Emit` statement in `block` (or a block inside it) covers.
fn collect_emitted(block: &naga::Block, into: &mut HashSet<Handle<Expression>>) {
    for statement in block.iter() {
        match statement {
            Statement::Emit(range) => into.extend(range.clone()),
            Statement::Block(b) => collect_emitted(b, into),
            Statement::If { accept, reject, .. } => {
                collect_emitted(accept, into);
                collect_emitted(reject, into);
            }
            Statement::Loop {
                body, continuing, ..
            } => {
                collect_emitted(body, into);
                collect_emitted(continuing, into);
            }
            _ => {}
        }
    }
}

fn is_pointer(
    info: &naga::valid::FunctionInfo,
    module: &naga::Module,
    h: Handle<Expression>,
) -> bool {
    matches!(
        info[h].ty.inner_with(&module.types),
        TypeInner::Pointer { .. } | TypeInner::ValuePointer { .. }
    )
}

/// Expressions as cheap to repeat as to name.
fn is_leaf(e: &Expression) -> bool {
    matches!(
        e,
        Expression::Literal(_)
            | Expression::Constant(_)
            | Expression::FunctionArgument(_)
            | Expression::LocalVariable(_)
            | Expression::ZeroValue(_)
    )
}

fn scalar_kind(inner: &TypeInner) -> Option<ScalarKind> {
    match *inner {
        TypeInner::Scalar(s) | TypeInner::Vector { scalar: s, .. } => Some(s.kind),
        _ => None,
    }
}

fn component(index: u32) -> Result<&'static str, String> {
    COMPONENTS
        .get(index as usize)
        .copied()
        .ok_or_else(|| format!("component {index} of a vector"))
}

/// The literal in C, its bits kept: floats print the shortest text that reads back the same
/// value (Rust's `{:?}`), which C's parser rounds to the same float.
fn literal(l: Literal) -> Result<String, String> {
    Ok(match l {
        Literal::F32(x) => float_text(f64::from(x), format!("{x:?}"), "f"),
        Literal::F64(x) => float_text(x, format!("{x:?}"), ""),
        Literal::U32(x) => format!("{x}u"),
        Literal::I32(i32::MIN) => "(-2147483647 - 1)".into(),
        Literal::I32(x) if x < 0 => format!("({x})"),
        Literal::I32(x) => format!("{x}"),
        Literal::Bool(b) => format!("{b}"),
        other => return Err(format!("the literal {other:?}")),
    })
}

fn float_text(x: f64, text: String, suffix: &str) -> String {
    let text = if text.contains(['.', 'e', 'E']) {
        format!("{text}{suffix}")
    } else {
        format!("{text}.0{suffix}")
    };
    if x < 0.0 {
        format!("({text})")
    } else {
        text
    }
}

/// WGSL names that C reserves, or that name the C math functions the generated code calls
/// (a WGSL `let floor = …` would hide C's `floor`), get a trailing underscore.
fn c_identifier(name: &str) -> String {
    const RESERVED: &[&str] = &[
        "auto",
        "char",
        "default",
        "double",
        "float",
        "int",
        "long",
        "register",
        "short",
        "signed",
        "sizeof",
        "static",
        "typedef",
        "union",
        "unsigned",
        "volatile",
        "void",
        "template",
        "class",
        "new",
        "delete",
        "this",
        "operator",
        "private",
        "public",
        "protected",
        "namespace",
        "using",
        "goto",
        "extern",
        "inline",
        "restrict",
        "min",
        "max",
        "abs",
        "fabs",
        "fabsf",
        "fmin",
        "fminf",
        "fmax",
        "fmaxf",
        "fmod",
        "fmodf",
        "floor",
        "floorf",
        "ceil",
        "ceilf",
        "trunc",
        "truncf",
        "rint",
        "rintf",
        "sqrt",
        "sqrtf",
        "exp",
        "expf",
        "exp2",
        "exp2f",
        "log",
        "logf",
        "log2",
        "log2f",
        "pow",
        "powf",
        "fma",
        "fmaf",
        "sin",
        "sinf",
        "cos",
        "cosf",
    ];
    if RESERVED.contains(&name) {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests;
