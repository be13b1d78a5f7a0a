// The household plan's yearly arithmetic (docs/model.md §5): the tax, the RMDs and the
// spending rules so far, written once for the GPU plan kernels to come. The WGSL kernel will
// put this file before its own; engine/build.rs already generates its CUDA C twin
// (sextant-kernelgen). Each function computes what its CPU counterpart in engine/src/plan/
// does, in the same order of operations, so that the bits match: the WGSL backend on lavapipe
// (engine/tests/gpu.rs) and the generated C on the host (engine/tests/generated_cuda.rs) are
// checked against the CPU. Money is f64 here, as on the CPU: a kernel that runs this needs an
// adapter with SHADER_F64.

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

// A plan's spending rule (§5): `kind` 0 fixed, 1 percent, 2 floor-ceiling, 3 VPW,
// 4 guardrails; the fields a kind does not use are zero. Amounts are monthly, today's dollars.
struct SpendingRule {
    kind: u32,
    essential: f64,
    discretionary: f64,
    // percent, floor-ceiling
    rate: f64,
    // floor-ceiling (monthly, today's dollars)
    ceiling: f64,
    // VPW
    real_return: f64,
    to_age: f64,
    // guardrails
    upper: f64,
    lower: f64,
    adjust: f64,
    min_years_left: f64,
    planning_age: f64,
}

// One path's spending from year to year: the monthly spending S_y and a guardrail rule's
// initial withdrawal rate WR₀, which is infinite when the first year starts with nothing
// (WGSL has no infinity: `initial_infinite` says so, and the comparisons below give what the
// CPU's comparisons with infinity give).
struct SpendingState {
    spend: f64,
    initial_rate: f64,
    initial_infinite: bool,
}

const SPENDING_UNCHANGED: u32 = 0u;
const SPENDING_CUT: u32 = 1u;
const SPENDING_RAISED: u32 = 2u;

// The monthly spending for the year starting now from the wealth at its start
// (engine/src/plan/simulate.rs, yearly_spending): sets `state.spend` and says whether a
// guardrail cut or raised it. `vpw_denominator` is 1 − (1 + r)^−n for the VPW rule's
// n = max(⌈to_age − youngest_age⌉, 1) years left, from a table the host fills with the CPU's
// `powf` (WGSL's `pow` is f32 only).
fn yearly_spending(
    rule: SpendingRule,
    state: ptr<function, SpendingState>,
    last_year_return: f64,
    first: bool,
    wealth: f64,
    index: f64,
    previous_index: f64,
    youngest_age: f64,
    vpw_denominator: f64,
) -> u32 {
    let floor = rule.essential * index;
    let planned = (rule.essential + rule.discretionary) * index;
    let w = max(wealth, f64(0.0));
    if (rule.kind == 4u) {
        return guardrails(rule, state, last_year_return, first, w, index, previous_index, youngest_age, floor, planned);
    }
    if (rule.kind == 0u) {
        (*state).spend = planned;
    } else if (rule.kind == 1u) {
        (*state).spend = max(floor, rule.rate * w / 12.0);
    } else if (rule.kind == 2u) {
        // Rust's clamp: the floor first, then the ceiling.
        var s = rule.rate * w / 12.0;
        if (s < floor) {
            s = floor;
        }
        if (s > rule.ceiling * index) {
            s = rule.ceiling * index;
        }
        (*state).spend = s;
    } else {
        let years = max(ceil(rule.to_age - youngest_age), f64(1.0));
        var payment = w / years;
        if (rule.real_return != 0.0) {
            payment = w * rule.real_return / vpw_denominator;
        }
        (*state).spend = max(floor, payment / 12.0);
    }
    return SPENDING_UNCHANGED;
}

fn guardrails(
    rule: SpendingRule,
    state: ptr<function, SpendingState>,
    last_year_return: f64,
    first: bool,
    w: f64,
    index: f64,
    previous_index: f64,
    youngest_age: f64,
    floor: f64,
    planned: f64,
) -> u32 {
    let has_wealth = w > 0.0;
    if (first) {
        (*state).initial_infinite = !has_wealth;
        (*state).initial_rate = 0.0;
        if (has_wealth) {
            (*state).initial_rate = 12.0 * planned / w;
        }
        (*state).spend = planned;
        return SPENDING_UNCHANGED;
    }
    let initial = (*state).initial_rate;
    let finite = !(*state).initial_infinite;
    var s = (*state).spend;
    // The rate is infinite without wealth: above any finite WR₀, never above an infinite one.
    let above_before = finite && (!has_wealth || 12.0 * s / w > initial);
    // No inflation raise after a losing year while the rate is above WR₀.
    if (!(last_year_return < 0.0 && above_before)) {
        s = s * (index / previous_index);
    }
    var above = finite && !has_wealth;
    var below = !finite && has_wealth;
    if (has_wealth && finite) {
        let rate = 12.0 * s / w;
        above = rate > rule.upper * initial;
        below = rate < rule.lower * initial;
    }
    var adjustment = SPENDING_UNCHANGED;
    if (above && rule.planning_age - youngest_age > rule.min_years_left) {
        s = s * (1.0 - rule.adjust);
        adjustment = SPENDING_CUT;
    } else if (below) {
        s = s * (1.0 + rule.adjust);
        adjustment = SPENDING_RAISED;
    }
    (*state).spend = max(s, floor);
    return adjustment;
}
