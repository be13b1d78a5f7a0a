// The household plan on the GPU (docs/model.md §5): the tax, the RMDs, the spending rules and
// the month loop of one path (`plan_path`), written once. It comes after shaders/common.wgsl
// (Philox, the normals); the WGSL backend appends its entry point, and engine/build.rs
// generates the CUDA C twin (sextant-kernelgen), to which kernels/plan.cu adds its own. Each
// function computes what its CPU counterpart in engine/src/plan/ does, in the same order of
// operations, so that the bits match: the WGSL backend on lavapipe (engine/tests/gpu.rs) and
// the generated C on the host (engine/tests/generated_cuda.rs) are checked against the CPU.
// Money is f64 here, as on the CPU: a kernel that runs this needs an adapter with SHADER_F64.

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

// ---- One path's months --------------------------------------------------------------------
//
// The plans come packed by engine/src/plan/packed.rs (which says what each slot holds; a test
// checks that the slots below match its): `plan_words` and `plan_reals` hold each plan of the
// batch, its per-year and per-month tables, end to end; `plan_lanes` two entries per row (see
// `plan_path`). Each row writes its outcome to `plan_money` and `plan_counts` and its yearly
// samples (wealth, then real spending, then under a stochastic index real wealth; NaN after
// its end) to `plan_samples`, as f32 bits (a
// NaN is a bit pattern there: WGSL has no NaN to write). The loop is
// engine/src/plan/simulate.rs's `run_group` for one lane, step by step.

@group(0) @binding(0) var<storage, read> plan_words: array<u32>;
@group(0) @binding(1) var<storage, read> plan_reals: array<f64>;
@group(0) @binding(2) var<storage, read> plan_lanes: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> plan_money: array<f64>;
@group(0) @binding(4) var<storage, read_write> plan_counts: array<u32>;
@group(0) @binding(5) var<storage, read_write> plan_samples: array<u32>;

const W_ACCOUNTS: u32 = 1u;
const W_PEOPLE: u32 = 2u;
const W_CONTRIBUTIONS: u32 = 3u;
const W_INCOMES: u32 = 4u;
const W_GOALS: u32 = 5u;
const W_YEARS: u32 = 6u;
const W_CASH: u32 = 7u;
const W_ORDER: u32 = 8u;
const W_SEQUENCE_LEN: u32 = 9u;
const W_DEFAULT_LEN: u32 = 10u;
const W_DEFERRED_LEN: u32 = 11u;
const W_RMD_AGE: u32 = 12u;
const W_SPENDING_START: u32 = 13u;
const W_RULE: u32 = 14u;
const W_TAX: u32 = 15u;
const W_BRACKETS: u32 = 16u;
const W_KEY: u32 = 17u;
const W_AGE: u32 = 19u;
const W_INDEX_AT: u32 = 21u;
const W_CONTRIBUTION_AT: u32 = 22u;
const W_INCOME_AT: u32 = 23u;
const W_BENEFIT_AT: u32 = 24u;
const W_DRIFT_AT: u32 = 25u;
const W_VOLATILITY_AT: u32 = 26u;
const W_GOALS_DUE_AT: u32 = 27u;
const W_MARKET: u32 = 28u;
// The market's block, from plan_words[W_MARKET] (packed.rs says what each holds).
const M_MODEL: u32 = 0u;
const M_HORIZON: u32 = 1u;
const M_T_D: u32 = 2u;
const M_T_C: u32 = 3u;
const M_T_SCALE: u32 = 4u;
const M_REGIMES: u32 = 5u;
const M_THRESHOLDS_AT: u32 = 6u;
const M_ROWS: u32 = 7u;
const M_BLOCK: u32 = 8u;
const M_MONTH_TABLE_AT: u32 = 9u;
const M_GROWTH_AT: u32 = 10u;
const M_INDEX: u32 = 11u;
const M_INFLATION_AT: u32 = 12u;
const M_PRICES_AT: u32 = 13u;
const M_ASSETS: u32 = 14u;
const M_ASSET_RULE: u32 = 15u;
const M_ASSETS_AT: u32 = 16u;
const M_ASSET_FLOATS_AT: u32 = 17u;
const W_KIND: u32 = 32u;
const W_OWNER: u32 = 48u;
const W_SEQUENCE: u32 = 64u;
const W_DEFAULT: u32 = 80u;
const W_DEFERRED: u32 = 96u;
const W_CONTRIBUTION_ACCOUNT: u32 = 112u;
const W_CONTRIBUTION_OWNER: u32 = 144u;
const W_CONTRIBUTION_END: u32 = 176u;
const W_INCOME_OWNER: u32 = 208u;
const W_INCOME_START: u32 = 240u;
const W_INCOME_END: u32 = 272u;
const W_INCOME_TAXABLE: u32 = 304u;
const W_GOAL_MONTH: u32 = 336u;
const W_GOAL_ESSENTIAL: u32 = 368u;
const W_INCOME_INDEXED: u32 = 400u;
const F_ESSENTIAL: u32 = 0u;
const F_DISCRETIONARY: u32 = 1u;
const F_SURVIVOR: u32 = 2u;
const F_RESERVE_YEARS: u32 = 3u;
const F_RATE: u32 = 4u;
const F_CEILING: u32 = 5u;
const F_REAL_RETURN: u32 = 6u;
const F_TO_AGE: u32 = 7u;
const F_UPPER: u32 = 8u;
const F_LOWER: u32 = 9u;
const F_ADJUST: u32 = 10u;
const F_MIN_YEARS_LEFT: u32 = 11u;
const F_PLANNING_AGE: u32 = 12u;
const F_SOCIAL_SECURITY_TAXABLE: u32 = 13u;
const F_DEDUCTION: u32 = 14u;
const F_GAINS_RATE: u32 = 15u;
const F_FILL_CEILING: u32 = 16u;
const F_OVER: u32 = 32u;
const F_BRACKET_RATE: u32 = 48u;
const F_BALANCE: u32 = 64u;
const F_BASIS: u32 = 80u;
const F_GOAL_AMOUNT: u32 = 96u;
const F_INCOME_SURVIVOR: u32 = 128u;
const F_VPW: u32 = 160u;

const KIND_TAXABLE: u32 = 0u;
const KIND_TAX_DEFERRED: u32 = 1u;
// A path's failure month while it has not failed.
const NEVER: u32 = 0xffffffffu;

// A path's accounts and running tax figures (simulate.rs, Household), for at most 16 accounts.
struct House {
    // Where this path's plan starts in `plan_words` and `plan_reals` (a batch holds several).
    words: u32,
    reals: u32,
    balance: array<f64, 16>,
    basis: array<f64, 16>,
    // Balances at the end of the previous year (RMDs).
    year_end_balance: array<f64, 16>,
    // Withdrawn from each tax-deferred account this year.
    withdrawn: array<f64, 16>,
    // This year's ordinary income and realised gains.
    ordinary: f64,
    gains: f64,
    // Last year's tax, due in this year's first month, and every year's tax so far.
    tax_due: f64,
    taxes: f64,
}

// What a path's market carries from month to month (docs/model.md §1, §4): the quad's
// normals, a Student-t market's first-proposal block, the regime and the quad's regime
// uniforms, a bootstrap's history row and the quad's block starts and draws.
struct PlanMarket {
    normals: vec4<f32>,
    mixing: vec4<u32>,
    regime: u32,
    regime_words: vec4<u32>,
    row: u32,
    starts: vec4<u32>,
    draws: vec4<u32>,
    // AR(1) inflation's own normals Z' of the quad; a history's 1 + π of the month's row.
    own: vec4<f32>,
    price: f64,
}

// A path's own price index (docs/model.md §5 "Money", §4.3, §4.4), as the CPU's IndexLanes
// (engine/src/inflation.rs): AR(1)'s rate and this year's product of max(1 + π, 0.5); I at
// the last year end, which scales the year's money; a history's I, which moves monthly.
struct PlanIndex {
    rate: f64,
    product: f64,
    year: f64,
    now: f64,
}

// The index past month t under the market's index (M_INDEX: 1 AR(1), 2 a history's), after
// the month's growth drew its normals or row: the CPU's LaneState::advance_index.
fn plan_index_step(h: ptr<function, House>, m: ptr<function, PlanMarket>, x: ptr<function, PlanIndex>, t: u32) {
    let at = plan_word(h, W_MARKET);
    let year_end = (t + 1u) % 12u == 0u;
    if (plan_word(h, at + M_INDEX) == 1u) {
        // π_{t+1} from ε_t = ρ·Z_t + sqrt(1 − ρ²)·Z'_t (Ar1Inflation::next_rate); the
        // constants θ, φ, the innovation's scale, ρ and sqrt(1 − ρ²) as f32 bits.
        let c = plan_word(h, at + M_INFLATION_AT);
        let mean = f64(bitcast<f32>(plan_word(h, c)));
        (*x).product = (*x).product * max(f64(1.0) + (*x).rate, f64(0.5));
        let shock = f64(bitcast<f32>(plan_word(h, c + 3u))) * f64((*m).normals[t & 3u])
            + f64(bitcast<f32>(plan_word(h, c + 4u))) * f64((*m).own[t & 3u]);
        (*x).rate = mean + f64(bitcast<f32>(plan_word(h, c + 1u))) * ((*x).rate - mean)
            + f64(bitcast<f32>(plan_word(h, c + 2u))) * shock;
        if (year_end) {
            (*x).year = (*x).year * f64(index_factor(f32(min((*x).product, f64(3.40282347e38)))));
            (*x).product = f64(1.0);
        }
    } else {
        (*x).now = (*x).now * (*m).price;
        if (year_end) {
            (*x).year = (*x).now;
        }
    }
}

// I at the end of the month stepped last (MarketLanes::index_now): AR(1)'s year-end index
// times F of the year's product so far, or a history's.
fn plan_index_now(h: ptr<function, House>, x: ptr<function, PlanIndex>) -> f64 {
    if (plan_word(h, plan_word(h, W_MARKET) + M_INDEX) == 1u) {
        if ((*x).product == 1.0) {
            return (*x).year;
        }
        return (*x).year * f64(index_factor(f32(min((*x).product, f64(3.40282347e38)))));
    }
    return (*x).now;
}

// Month t's growth of every account: the goals' month of the plan's market
// (shaders/simulate.wgsl, engine/src/backend/cpu/kernel.rs's quad_growth and drifts), drift
// times shock with the same draws and operations: §1's exp(vol·Z); a Student-t market's
// max(1 + vol·T, 0); under regimes, the month's regime's drift and vol; under a bootstrap, the
// fee's factor times the history month's growth.
fn plan_market_growth(h: ptr<function, House>, m: ptr<function, PlanMarket>, path: u32, t: u32, key: vec2<u32>) -> f64 {
    let at = plan_word(h, W_MARKET);
    let model = plan_word(h, at + M_MODEL);
    let bootstrap = model >= 3u;
    let lane = t & 3u;
    if (lane == 0u) {
        if (bootstrap) {
            (*m).starts = bootstrap_words(path, t, key, 0u);
            if (model == 4u) {
                (*m).draws = bootstrap_words(path, t, key, 1u);
            }
        } else {
            (*m).normals = normals_of_block(philox(vec4<u32>(path, t >> 2u, 0u, 0u), key));
        }
        if (model == 2u) {
            (*m).regime_words = regime_block(path, t, key);
        }
        if (plan_word(h, at + M_INDEX) == 1u) {
            (*m).own = inflation_normals(path, t, key);
        }
    }
    var month = t;
    if (model == 2u) {
        // Month 0 draws from row 0, month t from the row of month t − 1's regime.
        let u = regime_uniform((*m).regime_words, t);
        let width = plan_word(h, at + M_REGIMES) - 1u;
        let row = plan_word(h, at + M_THRESHOLDS_AT) + select(1u + (*m).regime, 0u, t == 0u) * width;
        var regime = 0u;
        for (var j = 0u; j < width; j++) {
            if (u >= bitcast<f32>(plan_word(h, row + j))) {
                regime = regime + 1u;
            }
        }
        (*m).regime = regime;
        month = regime * plan_word(h, at + M_HORIZON) + t;
    }
    let drift = plan_real(h, plan_word(h, W_DRIFT_AT) + month);
    if (bootstrap) {
        (*m).row = bootstrap_row((*m).row, t, (*m).starts[lane], (*m).draws[lane], plan_word(h, at + M_ROWS), plan_word(h, at + M_BLOCK), model == 4u);
        let segment = plan_word(h, plan_word(h, at + M_MONTH_TABLE_AT) + t);
        let gross = plan_real(h, plan_word(h, at + M_GROWTH_AT) + segment + (*m).row);
        if (plan_word(h, at + M_INDEX) == 2u) {
            (*m).price = plan_real(h, plan_word(h, at + M_PRICES_AT) + (*m).row);
        }
        return (drift * gross) * f64(1.0);
    }
    let vol = bitcast<f32>(plan_word(h, plan_word(h, W_VOLATILITY_AT) + month));
    let z = (*m).normals[lane];
    if (model == 1u) {
        let d = bitcast<f32>(plan_word(h, at + M_T_D));
        let c = bitcast<f32>(plan_word(h, at + M_T_C));
        // Months 2k and 2k+1 share their first proposals' block.
        if ((t & 1u) == 0u) {
            (*m).mixing = student_t_block(path, t, key);
        }
        var v = student_t_first((*m).mixing, t, d, c);
        if (!(v > 0.0)) {
            v = student_t_retry(path, t, key, d, c);
        }
        let gross = student_t_gross(z, vol, v, bitcast<f32>(plan_word(h, at + M_T_SCALE)));
        var shock = 0.0;
        if (gross > 0.0) {
            shock = gross;
        }
        return drift * f64(shock);
    }
    return drift * f64(exp_poly(vol * z));
}

// A plan's household portfolio under per-asset paths (docs/model.md §5 "Per-asset paths",
// §4.5; the CPU's PortfolioLanes in engine/src/backend/cpu/assets.rs): the accounts hold one
// portfolio, whose mix m_k (fractions of the wealth, summing to 1) trades with the month's
// net cash flow, rebalances by the rule and grows by the assets' own returns; every account
// grows by Σ m_k·G_k. The market's block gives K (M_ASSETS, 0 without per-asset paths), the
// rule (M_ASSET_RULE: 0 annual, 1 band, 2 none), where each asset's drift, the band and the
// target weights month by month (horizon × K) sit in `reals` (M_ASSETS_AT), and where each
// asset's monthly volatility and the correlations' lower Cholesky factor (K × K, row-major)
// sit in `words` as f32 bits (M_ASSET_FLOATS_AT). The normals are the goals' (asset_normals).
struct PlanPortfolio {
    mix: array<f64, 16>,
    rebalances: u32,
    turnover: f64,
}

// Every path starts at the weights of month 0.
fn portfolio_start(h: ptr<function, House>, p: ptr<function, PlanPortfolio>) {
    let at = plan_word(h, W_MARKET);
    let count = plan_word(h, at + M_ASSETS);
    let weights = plan_word(h, at + M_ASSETS_AT) + count + 1u;
    for (var k = 0u; k < count; k++) {
        (*p).mix[k] = plan_real(h, weights + k);
    }
    (*p).rebalances = 0u;
    (*p).turnover = f64(0.0);
}

// Month t's trades of a path that runs (`live`), given its wealth `before` the month's cash
// flows and `after` them (PortfolioLanes::trade): net saving buys at the month's target
// weights, net spending sells pro rata (the mix is kept); then the rule rebalances, counted
// with its one-sided turnover Σ_k |w_k − m_k| / 2. Nothing trades at a wealth of 0.
fn portfolio_trade(h: ptr<function, House>, p: ptr<function, PlanPortfolio>, t: u32, before: f64, after: f64, live: bool) {
    let at = plan_word(h, W_MARKET);
    let count = plan_word(h, at + M_ASSETS);
    let table = plan_word(h, at + M_ASSETS_AT);
    let weights = table + count + 1u + t * count;
    let on = live && after > 0.0;
    let net = after - before;
    if (on && net > 0.0) {
        for (var k = 0u; k < count; k++) {
            (*p).mix[k] = ((*p).mix[k] * before + net * plan_real(h, weights + k)) / after;
        }
    }
    var rebalance = false;
    let rule = plan_word(h, at + M_ASSET_RULE);
    if (rule == 0u) {
        rebalance = on && t > 0u && t % 12u == 0u;
    } else if (rule == 1u) {
        let band = plan_real(h, table + count);
        for (var k = 0u; k < count; k++) {
            if (abs((*p).mix[k] - plan_real(h, weights + k)) > band) {
                rebalance = true;
            }
        }
        rebalance = rebalance && on;
    }
    if (rebalance) {
        var traded = f64(0.0);
        for (var k = 0u; k < count; k++) {
            let w = plan_real(h, weights + k);
            traded = traded + abs(w - (*p).mix[k]);
            (*p).mix[k] = w;
        }
        (*p).turnover = (*p).turnover + traded / 2.0;
        (*p).rebalances = (*p).rebalances + 1u;
    }
}

// Month t's growth of the portfolio, Σ_k m_k·G_k with G_k = drift_k · exp(s_k · Σ_{j≤k} L_kj Z_j)
// (the goals' growth, shaders/assets.wgsl), after which the mix is what the assets' own
// returns made it (PortfolioLanes::growth).
fn portfolio_growth(h: ptr<function, House>, p: ptr<function, PlanPortfolio>, z: ptr<function, array<vec4<f32>, MAX_ASSETS>>, t: u32) -> f64 {
    let at = plan_word(h, W_MARKET);
    let count = plan_word(h, at + M_ASSETS);
    let table = plan_word(h, at + M_ASSETS_AT);
    let floats = plan_word(h, at + M_ASSET_FLOATS_AT);
    let lane = t & 3u;
    var total = f64(0.0);
    for (var i = 0u; i < count; i++) {
        let row = floats + count + i * count;
        var y = bitcast<f32>(plan_word(h, row)) * (*z)[0][lane];
        for (var j = 1u; j <= i; j++) {
            y = y + bitcast<f32>(plan_word(h, row + j)) * (*z)[j][lane];
        }
        let growth = plan_real(h, table + i) * f64(exp_poly(bitcast<f32>(plan_word(h, floats + i)) * y));
        (*p).mix[i] = (*p).mix[i] * growth;
        total = total + (*p).mix[i];
    }
    for (var i = 0u; i < count; i++) {
        (*p).mix[i] = (*p).mix[i] / total;
    }
    return total;
}

// Slot `slot` of this path's plan.
fn plan_word(h: ptr<function, House>, slot: u32) -> u32 {
    return plan_words[(*h).words + slot];
}

fn plan_real(h: ptr<function, House>, slot: u32) -> f64 {
    return plan_reals[(*h).reals + slot];
}

fn plan_tax_schedule(h: ptr<function, House>) -> TaxSchedule {
    var s: TaxSchedule;
    s.count = plan_word(h, W_BRACKETS);
    s.standard_deduction = plan_real(h, F_DEDUCTION);
    s.capital_gains_rate = plan_real(h, F_GAINS_RATE);
    for (var k = 0u; k < MAX_BRACKETS; k++) {
        s.over[k] = plan_real(h, F_OVER + k);
        s.rate[k] = plan_real(h, F_BRACKET_RATE + k);
    }
    return s;
}

fn plan_spending_rule(h: ptr<function, House>) -> SpendingRule {
    var r: SpendingRule;
    r.kind = plan_word(h, W_RULE);
    r.essential = plan_real(h, F_ESSENTIAL);
    r.discretionary = plan_real(h, F_DISCRETIONARY);
    r.rate = plan_real(h, F_RATE);
    r.ceiling = plan_real(h, F_CEILING);
    r.real_return = plan_real(h, F_REAL_RETURN);
    r.to_age = plan_real(h, F_TO_AGE);
    r.upper = plan_real(h, F_UPPER);
    r.lower = plan_real(h, F_LOWER);
    r.adjust = plan_real(h, F_ADJUST);
    r.min_years_left = plan_real(h, F_MIN_YEARS_LEFT);
    r.planning_age = plan_real(h, F_PLANNING_AGE);
    return r;
}

fn house_total(h: ptr<function, House>) -> f64 {
    var sum = f64(0.0);
    for (var a = 0u; a < plan_word(h, W_ACCOUNTS); a++) {
        sum = sum + (*h).balance[a];
    }
    return sum;
}

// The tax on this year so far at price level `index` (none without a schedule).
fn house_year_tax(h: ptr<function, House>, schedule: TaxSchedule, index: f64) -> f64 {
    if (plan_word(h, W_TAX) == 0u) {
        return f64(0.0);
    }
    return year_tax(schedule, (*h).ordinary, (*h).gains, index);
}

// The year (at price level `index`) is over: its tax falls due next month.
fn house_close_year(h: ptr<function, House>, schedule: TaxSchedule, index: f64) {
    let tax = house_year_tax(h, schedule, index);
    (*h).tax_due = tax;
    (*h).taxes = (*h).taxes + tax;
    (*h).ordinary = f64(0.0);
    (*h).gains = f64(0.0);
    for (var a = 0u; a < plan_word(h, W_ACCOUNTS); a++) {
        (*h).withdrawn[a] = f64(0.0);
        (*h).year_end_balance[a] = (*h).balance[a];
    }
}

// New money into account `a` (a taxable account's basis rises with it).
fn house_deposit(h: ptr<function, House>, a: u32, amount: f64) {
    (*h).balance[a] = (*h).balance[a] + amount;
    if (plan_word(h, W_KIND + a) == KIND_TAXABLE) {
        (*h).basis[a] = (*h).basis[a] + amount;
    }
}

// `amount` out of account `a`, with its tax consequences.
fn house_take(h: ptr<function, House>, a: u32, amount: f64) {
    let kind = plan_word(h, W_KIND + a);
    let value = (*h).balance[a];
    if (kind == KIND_TAXABLE) {
        let basis = (*h).basis[a];
        if (value > 0.0) {
            (*h).gains = (*h).gains + amount * (1.0 - basis / value);
            (*h).basis[a] = basis - basis * (amount / value);
        }
    } else if (kind == KIND_TAX_DEFERRED) {
        (*h).ordinary = (*h).ordinary + amount;
        (*h).withdrawn[a] = (*h).withdrawn[a] + amount;
    }
    (*h).balance[a] = value - amount;
}

// `rest` from the `count` accounts listed from word `list`, one after another: what they
// could not pay (0 when they paid it all).
fn house_in_order(h: ptr<function, House>, rest_in: f64, list: u32, count: u32) -> f64 {
    var rest = rest_in;
    var left = rest > 0.0;
    for (var k = 0u; k < count; k++) {
        if (!left) {
            break;
        }
        let a = plan_word(h, list + k);
        let take = min(rest, (*h).balance[a]);
        if (!(rest > 0.0 && take > 0.0)) {
            continue;
        }
        house_take(h, a, take);
        rest = rest - take;
        left = rest > 0.0;
    }
    return select(f64(0.0), rest, rest > 0.0);
}

// `amount` (at most the total) from the accounts in the plan's withdrawal order.
fn house_withdraw(h: ptr<function, House>, amount: f64, index: f64) {
    if (!(amount > 0.0)) {
        return;
    }
    let order = plan_word(h, W_ORDER);
    if (order == 0u) {
        let unpaid = house_in_order(h, amount, W_SEQUENCE, plan_word(h, W_SEQUENCE_LEN));
    } else if (order == 1u) {
        let total = house_total(h);
        var rest = amount;
        for (var a = 0u; a < plan_word(h, W_ACCOUNTS); a++) {
            let balance = (*h).balance[a];
            let take = min(min(amount * (balance / total), balance), rest);
            if (total > 0.0 && take > 0.0) {
                house_take(h, a, take);
                rest = rest - take;
            }
        }
        // Rounding may leave a few cents' fraction: the default order takes it.
        let unpaid = house_in_order(h, rest, W_DEFAULT, plan_word(h, W_DEFAULT_LEN));
    } else {
        let first = min(amount, max(plan_real(h, F_FILL_CEILING) * index - (*h).ordinary, f64(0.0)));
        let left = house_in_order(h, first, W_DEFERRED, plan_word(h, W_DEFERRED_LEN));
        let unpaid = house_in_order(h, amount - first + left, W_DEFAULT, plan_word(h, W_DEFAULT_LEN));
    }
}

// Every account emptied (a path that fails).
fn house_deplete(h: ptr<function, House>) {
    for (var a = 0u; a < plan_word(h, W_ACCOUNTS); a++) {
        (*h).balance[a] = f64(0.0);
        (*h).basis[a] = f64(0.0);
    }
}

// Person p's age in whole years in month t.
fn age_years(h: ptr<function, House>, p: u32, t: u32) -> u32 {
    return (plan_word(h, W_AGE + p) + t) / 12u;
}

// The RMDs of month t (the year's last) on a running path: each tax-deferred account's
// requirement less what was taken this year, moved to the cash account as ordinary income; a
// dead owner's account passes to the survivor.
fn house_take_rmds(h: ptr<function, House>, alive0: bool, alive1: bool, running: bool, t: u32) {
    let people = plan_word(h, W_PEOPLE);
    for (var k = 0u; k < plan_word(h, W_DEFERRED_LEN); k++) {
        let a = plan_word(h, W_DEFERRED + k);
        let owner = plan_word(h, W_OWNER + a);
        let heir = min(1u - owner, people - 1u);
        let owner_alive = select(alive0, alive1, owner == 1u);
        let age = age_years(h, select(heir, owner, owner_alive), t);
        let required = rmd_required((*h).year_end_balance[a], age) - (*h).withdrawn[a];
        let amount = min(required, (*h).balance[a]);
        if (running && age >= plan_word(h, W_RMD_AGE) && amount > 0.0) {
            house_take(h, a, amount);
            house_deposit(h, plan_word(h, W_CASH), amount);
        }
    }
}

// The age in years of the youngest person alive in month t (someone is).
fn youngest_living_age(h: ptr<function, House>, alive0: bool, alive1: bool, t: u32) -> f64 {
    let age0 = f64(plan_word(h, W_AGE) + t) / 12.0;
    let age1 = f64(plan_word(h, W_AGE + 1u) + t) / 12.0;
    if (alive0 && alive1) {
        return min(age0, age1);
    }
    return select(age1, age0, alive0);
}

// Row `row`'s path, month by month, to its end. `plan_lanes` holds two entries a row: (path,
// death month of each person, end month), then (where its plan starts in `plan_words` and
// `plan_reals`, where its samples start). Its outcome goes to place `out` of `plan_money` and
// `plan_counts`, its samples from `samples_at` (a launch's outputs may hold a slice of the
// rows, of plans with different horizons).
fn plan_path(row: u32, out: u32, samples_at: u32) {
    let lane = plan_lanes[2u * row];
    let path = lane.x;
    let death0 = lane.y;
    let death1 = lane.z;
    let end = lane.w;
    var house: House;
    house.words = plan_lanes[2u * row + 1u].x;
    house.reals = plan_lanes[2u * row + 1u].y;
    let couple = plan_word(&house, W_PEOPLE) == 2u;
    let accounts = plan_word(&house, W_ACCOUNTS);
    let years = plan_word(&house, W_YEARS);
    let index_at = plan_word(&house, W_INDEX_AT);
    // Under a stochastic index the path's own I scales today's money, and a third row of
    // samples holds its real wealth.
    // The market's block, and its price index: 0 the plan's rate, 1 AR(1), 2 a history's.
    let market_at = plan_word(&house, W_MARKET);
    let index_kind = plan_word(&house, market_at + M_INDEX);
    let stochastic = index_kind != 0u;
    let sample_rows = select(2u, 3u, stochastic);
    let start = plan_word(&house, W_SPENDING_START);
    let key = vec2<u32>(plan_word(&house, W_KEY), plan_word(&house, W_KEY + 1u));
    let schedule = plan_tax_schedule(&house);
    let rule = plan_spending_rule(&house);

    // The years the path does not reach stay NaN.
    let nan = 0x7fc00000u;
    for (var y = 0u; y < sample_rows * years; y++) {
        plan_samples[samples_at + y] = nan;
    }
    for (var a = 0u; a < accounts; a++) {
        house.balance[a] = plan_real(&house, F_BALANCE + a);
        house.basis[a] = plan_real(&house, F_BASIS + a);
        house.year_end_balance[a] = house.balance[a];
    }
    var failed_at = NEVER;
    var goals_due = 0u;
    var goals_paid = 0u;
    var spending_cut = false;
    var cuts = 0u;
    var raises = 0u;
    var spending = SpendingState(f64(0.0), f64(0.0), true);
    var year_growth = f64(1.0);
    var last_year_return = f64(0.0);
    var spent_this_year = f64(0.0);
    var index = f64(1.0);
    var previous_index = f64(1.0);
    let none = vec4<u32>(0u);
    var market = PlanMarket(vec4<f32>(0.0), none, 0u, none, 0u, none, none, vec4<f32>(0.0), f64(1.0));
    // Student-t months clamped at −100% (growth 0, which no other model gives).
    let counts_clamps = plan_word(&house, market_at + M_MODEL) == 1u;
    var clamped = 0u;
    // AR(1)'s π_0, the sixth of its constants (read, and unused, under other indices).
    let ar1_initial = bitcast<f32>(plan_word(&house, plan_word(&house, market_at + M_INFLATION_AT) + 5u));
    let initial_rate = select(f64(0.0), f64(ar1_initial), index_kind == 1u);
    var own_index = PlanIndex(initial_rate, f64(1.0), f64(1.0), f64(1.0));
    // Per-asset paths: the household's portfolio across the assets, and the quad's normals.
    let assets = plan_word(&house, market_at + M_ASSETS);
    var portfolio: PlanPortfolio;
    var asset_z: array<vec4<f32>, MAX_ASSETS>;
    if (assets > 0u) {
        portfolio_start(&house, &portfolio);
    }

    for (var t = 0u; t < end; t++) {
        let year = t / 12u;
        if (t % 12u == 0u && t > 0u) {
            // Close the previous year: its tax falls due now; its samples are recorded.
            previous_index = index;
            index = select(plan_real(&house, index_at + year), own_index.year, stochastic);
            house_close_year(&house, schedule, previous_index);
            last_year_return = year_growth - 1.0;
            year_growth = f64(1.0);
            if (years > 0u) {
                plan_samples[samples_at + year - 1u] = bitcast<u32>(f32(house_total(&house)));
                plan_samples[samples_at + years + year - 1u] = bitcast<u32>(f32(spent_this_year / previous_index));
                if (stochastic) {
                    plan_samples[samples_at + 2u * years + year - 1u] = bitcast<u32>(f32(house_total(&house) / index));
                }
            }
            spent_this_year = f64(0.0);
        }

        // Who is alive this month, and what the household spends on.
        let alive0 = t < death0;
        let alive1 = couple && t < death1;
        var survivor = f64(1.0);
        if (couple && !(alive0 && alive1)) {
            survivor = plan_real(&house, F_SURVIVOR);
        }
        let spending_on = t >= start;
        let sets_spending = spending_on && (t == start || t % 12u == 0u);
        // (Per-asset paths read it every month: the month's net cash flow is what they trade.)
        var wealth_at_start = f64(0.0);
        if (sets_spending || assets > 0u) {
            wealth_at_start = house_total(&house);
        }
        let failed = failed_at != NEVER;

        // Contributions (none into a failed path's accounts).
        let contributions = plan_word(&house, W_CONTRIBUTIONS);
        for (var k = 0u; k < contributions; k++) {
            if (t >= plan_word(&house, W_CONTRIBUTION_END + k)) {
                continue;
            }
            let saving = select(alive0, alive1, plan_word(&house, W_CONTRIBUTION_OWNER + k) == 1u) && !failed;
            if (saving) {
                let amount = plan_real(&house, plan_word(&house, W_CONTRIBUTION_AT) + year * contributions + k);
                house_deposit(&house, plan_word(&house, W_CONTRIBUTION_ACCOUNT + k), amount);
            }
        }

        // Incomes and Social Security.
        var cash = f64(0.0);
        var taxable_income = f64(0.0);
        var has_cash = false;
        // What is indexed scales by the path's own index (the tables then hold today's money).
        let today = select(f64(1.0), index, stochastic);
        let incomes = plan_word(&house, W_INCOMES);
        for (var k = 0u; k < incomes; k++) {
            if (t < plan_word(&house, W_INCOME_START + k) || t >= plan_word(&house, W_INCOME_END + k)) {
                continue;
            }
            has_cash = true;
            let base = plan_real(&house, plan_word(&house, W_INCOME_AT) + year * incomes + k);
            let owner = plan_word(&house, W_INCOME_OWNER + k);
            let own = select(alive0, alive1, owner == 1u);
            let other = select(alive1, alive0, owner == 1u);
            var scale = f64(0.0);
            if (own) {
                scale = f64(1.0);
            } else if (other) {
                scale = plan_real(&house, F_INCOME_SURVIVOR + k);
            }
            let amount = base * scale * select(f64(1.0), today, plan_word(&house, W_INCOME_INDEXED + k) != 0u);
            cash = cash + amount;
            if (plan_word(&house, W_INCOME_TAXABLE + k) != 0u) {
                taxable_income = taxable_income + amount;
            }
        }
        let benefit_at = plan_word(&house, W_BENEFIT_AT) + 2u * t;
        let own_benefit = vec2<f64>(plan_real(&house, benefit_at), plan_real(&house, benefit_at + 1u));
        var benefits = f64(0.0);
        if (own_benefit.x != 0.0 || own_benefit.y != 0.0) {
            has_cash = true;
            for (var p = 0u; p < plan_word(&house, W_PEOPLE); p++) {
                let own = own_benefit[p];
                let other = own_benefit[1u - p];
                let alive_p = select(alive0, alive1, p == 1u);
                let alive_other = select(alive1, alive0, p == 1u);
                // The survivor keeps the larger of the two benefits.
                var benefit = own;
                if (couple && !alive_other) {
                    benefit = max(own, other);
                }
                if (alive_p) {
                    benefits = benefits + benefit * today;
                }
            }
        }
        if (has_cash) {
            cash = cash + benefits;
            if (plan_word(&house, W_TAX) != 0u) {
                taxable_income = taxable_income + benefits * plan_real(&house, F_SOCIAL_SECURITY_TAXABLE);
            }
            house.ordinary = house.ordinary + taxable_income;
        }

        // Spending for the year.
        if (sets_spending) {
            let youngest = youngest_living_age(&house, alive0, alive1, t);
            let n = max(ceil(rule.to_age - youngest), f64(1.0));
            let vpw_denominator = plan_real(&house, F_VPW + min(u32(n), 127u));
            let adjustment = yearly_spending(rule, &spending, last_year_return, t == start,
                wealth_at_start, index, previous_index, youngest, vpw_denominator);
            if (adjustment == SPENDING_CUT) {
                cuts = cuts + 1u;
                spending_cut = true;
            } else if (adjustment == SPENDING_RAISED) {
                raises = raises + 1u;
            }
        }
        var essential_spending = f64(0.0);
        var discretionary = f64(0.0);
        if (spending_on) {
            essential_spending = rule.essential * index * survivor;
            discretionary = max(spending.spend * survivor - essential_spending, f64(0.0));
        }

        // Needs: essential spending, essential goals due, last year's tax.
        var essential_goals = f64(0.0);
        var essential_due = 0u;
        var flexible_due = false;
        let due = plan_word(&house, plan_word(&house, W_GOALS_DUE_AT) + t);
        if (due != 0u) {
            goals_due = goals_due | due;
            for (var g = 0u; g < plan_word(&house, W_GOALS); g++) {
                if ((due & (1u << g)) == 0u) {
                    continue;
                }
                if (plan_word(&house, W_GOAL_ESSENTIAL + g) != 0u) {
                    essential_goals = essential_goals + plan_real(&house, F_GOAL_AMOUNT + g) * index;
                    essential_due = essential_due | (1u << g);
                } else {
                    flexible_due = true;
                }
            }
        }
        // The cash pays first; the accounts pay the rest unless that would empty them. Once
        // failed, the accounts are empty and only the cash pays.
        var met = true;
        var paid_spending = f64(0.0);
        if (spending_on || essential_due != 0u || house.tax_due != 0.0) {
            let total = house_total(&house);
            let need = essential_spending + essential_goals + house.tax_due;
            house.tax_due = f64(0.0);
            let cash_before = cash;
            let covered = cash >= need;
            let short = need - cash;
            let fails = !covered && !failed && total - short <= 0.0;
            let draws = !covered && !failed && !fails;
            var draw = f64(0.0);
            if (fails) {
                draw = total;
            } else if (draws) {
                draw = short;
            }
            cash = select(f64(0.0), cash - need, covered);
            met = covered || draws;
            paid_spending = select(min(cash_before, essential_spending), essential_spending, met);
            house_withdraw(&house, draw, index);
            if (fails) {
                house_deplete(&house);
                failed_at = t;
            }
        }
        if (met) {
            goals_paid = goals_paid | essential_due;
        }
        // Discretionary spending, as far as the cash and the accounts allow.
        if (spending_on && discretionary > 0.0) {
            let total = house_total(&house);
            let from_cash = min(cash, discretionary);
            let need = discretionary - from_cash;
            let take = min(need, max(total, f64(0.0)));
            cash = cash - from_cash;
            spending_cut = spending_cut || take < need;
            paid_spending = paid_spending + (from_cash + take);
            if (take > 0.0) {
                house_withdraw(&house, take, index);
            }
        }
        // Flexible goals: paid only if what is left covers the reserve.
        if (flexible_due) {
            let reserve = plan_real(&house, F_RESERVE_YEARS) * 12.0 * rule.essential * index * survivor;
            for (var g = 0u; g < plan_word(&house, W_GOALS); g++) {
                if (plan_word(&house, W_GOAL_MONTH + g) != t || plan_word(&house, W_GOAL_ESSENTIAL + g) != 0u) {
                    continue;
                }
                let amount = plan_real(&house, F_GOAL_AMOUNT + g) * index;
                let total = house_total(&house);
                if (total + cash - amount >= reserve) {
                    let from_cash = min(cash, amount);
                    cash = cash - from_cash;
                    goals_paid = goals_paid | (1u << g);
                    if (amount > from_cash) {
                        house_withdraw(&house, amount - from_cash, index);
                    }
                }
            }
        }
        // A surplus is saved in the cash account (a failed path spends it).
        if (has_cash && failed_at == NEVER && cash > 0.0) {
            house_deposit(&house, plan_word(&house, W_CASH), cash);
        }
        // RMDs in the year's last month.
        if (t % 12u == 11u) {
            house_take_rmds(&house, alive0, alive1, failed_at == NEVER, t);
        }
        if (spending_on) {
            spent_this_year = spent_this_year + paid_spending;
        }

        // Growth: the market's month on every account; under per-asset paths the month's
        // trades first, then the portfolio's growth (AR(1)'s own normals still drawn: its
        // correlation with the market is 0 there).
        var growth = f64(1.0);
        if (assets > 0u) {
            if ((t & 3u) == 0u) {
                asset_normals(&asset_z, path, t, key, assets);
                if (index_kind == 1u) {
                    market.own = inflation_normals(path, t, key);
                }
            }
            portfolio_trade(&house, &portfolio, t, wealth_at_start, house_total(&house), failed_at == NEVER);
            growth = portfolio_growth(&house, &portfolio, &asset_z, t);
        } else {
            growth = plan_market_growth(&house, &market, path, t, key);
        }
        year_growth = year_growth * growth;
        if (counts_clamps && growth == 0.0) {
            clamped = clamped + 1u;
        }
        for (var a = 0u; a < accounts; a++) {
            house.balance[a] = house.balance[a] * growth;
        }
        if (stochastic) {
            plan_index_step(&house, &market, &own_index, t);
        }
    }

    // The path's end: the open year's tax (at its year's index) comes out of the estate.
    let owed = house_year_tax(&house, schedule, index);
    let total = house_total(&house);
    var deferred = f64(0.0);
    for (var k = 0u; k < plan_word(&house, W_DEFERRED_LEN); k++) {
        deferred = deferred + house.balance[plan_word(&house, W_DEFERRED + k)];
    }
    plan_money[6u * out] = max(total - owed, f64(0.0));
    plan_money[6u * out + 1u] = max(total, f64(0.0));
    plan_money[6u * out + 2u] = deferred;
    plan_money[6u * out + 3u] = house.taxes + min(owed, max(total, f64(0.0)));
    // I at the end under a stochastic index (the host takes (1+i)^(end/12) otherwise).
    plan_money[6u * out + 4u] = select(f64(1.0), plan_index_now(&house, &own_index), stochastic);
    plan_counts[9u * out] = end;
    plan_counts[9u * out + 1u] = failed_at;
    plan_counts[9u * out + 2u] = goals_due;
    plan_counts[9u * out + 3u] = goals_paid;
    plan_counts[9u * out + 4u] = select(0u, 1u, spending_cut);
    plan_counts[9u * out + 5u] = cuts;
    plan_counts[9u * out + 6u] = raises;
    plan_counts[9u * out + 7u] = clamped;
    // Under per-asset paths, the portfolio's rebalances and turnover (0 otherwise).
    plan_money[6u * out + 5u] = portfolio.turnover;
    plan_counts[9u * out + 8u] = portfolio.rebalances;
}
