// The household plan's yearly arithmetic (docs/model.md §5): the tax and the RMDs so far,
// written once for the GPU plan kernels to come: the WGSL kernel will put this file before its own, and engine/build.rs
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

// The IRS Uniform Lifetime Table's distribution periods for ages 72, 73, … 120 and above
// (engine/src/plan/rmd.rs, which says where it was checked).
const RMD_FIRST_AGE: u32 = 72u;
const RMD_DIVISORS = array<f64, 49>(
    27.4, 26.5, 25.5, 24.6, 23.7, 22.9, 22.0, 21.1, 20.2, 19.4,
    18.5, 17.7, 16.8, 16.0, 15.2, 14.4, 13.7, 12.9, 12.2, 11.5,
    10.8, 10.1, 9.5, 8.9, 8.4, 7.8, 7.3, 6.8, 6.4, 6.0,
    5.6, 5.2, 4.9, 4.6, 4.3, 4.1, 3.9, 3.7, 3.5, 3.4,
    3.3, 3.1, 3.0, 2.9, 2.8, 2.7, 2.5, 2.3, 2.0,
);

// The year's required distribution from the balance at the end of the previous year for an
// owner of `age` at the end of the year; zero below the table (rmd.rs, required).
fn rmd_required(balance_at_previous_year_end: f64, age: u32) -> f64 {
    if (age < RMD_FIRST_AGE) {
        return f64(0.0);
    }
    let row = min(age - RMD_FIRST_AGE, 48u);
    return max(balance_at_previous_year_end, f64(0.0)) / RMD_DIVISORS[row];
}
