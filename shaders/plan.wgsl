// The household plan's yearly arithmetic (docs/model.md §5), written once for the GPU plan
// kernels to come: the WGSL kernel will put this file before its own, and engine/build.rs
// already generates its CUDA C twin (sextant-kernelgen). Each function computes what its CPU
// counterpart in engine/src/plan/ does, in the same order of operations, so that the bits
// match (engine/tests/generated_cuda.rs runs the generated C against the CPU). Money is f64
// here, as on the CPU: a kernel that runs this needs an adapter with SHADER_F64.

// The most brackets a tax schedule may have (validation refuses more).
const MAX_BRACKETS: u32 = 16u;

// A tax schedule of §5 in today's dollars: brackets `over[k]` (increasing) taxed at `rate[k]`
// up to the next one's `over`, of which the first `count` are used.
struct TaxSchedule {
    over: array<f64, 16>,
    rate: array<f64, 16>,
    count: u32,
    standard_deduction: f64,
    capital_gains_rate: f64,
}

// The tax on `taxable` (nominal) under the brackets scaled by `index` (the price level, 1
// today); income below the first `over` is untaxed (engine/src/plan/tax.rs, bracket_tax).
fn bracket_tax(schedule: TaxSchedule, taxable: f64, index: f64) -> f64 {
    var tax = f64(0.0);
    for (var k = 0u; k < schedule.count; k++) {
        let low = schedule.over[k] * index;
        if (taxable <= low) {
            break;
        }
        // The top bracket has no upper edge: all of `taxable` above `low` is in it.
        var high = taxable;
        if (k + 1u < schedule.count) {
            high = min(taxable, schedule.over[k + 1u] * index);
        }
        tax = tax + schedule.rate[k] * (high - low);
    }
    return tax;
}

// The year's tax: the brackets on `ordinary` income less the standard deduction, both
// indexed, plus the capital-gains rate on `gains` (tax.rs, year_tax).
fn year_tax(schedule: TaxSchedule, ordinary: f64, gains: f64, index: f64) -> f64 {
    let taxable = max(ordinary - schedule.standard_deduction * index, f64(0.0));
    return bracket_tax(schedule, taxable, index) + schedule.capital_gains_rate * max(gains, f64(0.0));
}
