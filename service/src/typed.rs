//! Typed gRPC messages ↔ the JSON documents the HTTP routes read and write.
//!
//! The `.proto` mirrors each JSON document field by field, so the proto3 JSON mapping of a
//! message (with the proto field names, 64-bit integers as numbers, unset fields left out) is
//! the document the one validator reads. A request message becomes that document here and
//! goes down the same path as an HTTP body, so a bad field gets the same error naming the same
//! field. A result document becomes its message in one serde pass (the derive `build.rs` adds),
//! refusing a field the `.proto` does not declare (a result that drifted from the `.proto`
//! fails loudly, in the tests, not silently on a client). Four shapes differ from JSON, as the
//! `.proto`'s header says: a bare list (a matrix's rows, a withdrawal order's kinds) is a
//! message with one `repeated values` field, a choice of shapes (a spending rule's word or
//! object) is a message whose fields are one `oneof either`, a number's later object form is
//! a sibling `<field>_model` (`inflation_model`), all written here as JSON writes them; and a
//! what-if patch is a partial message whose unset fields are left out (which is
//! what a merge patch of the set fields means).

use std::sync::LazyLock;

use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, Kind, MessageDescriptor, SerializeOptions,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::grpc::proto;
use super::ApiError;

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(proto::DESCRIPTOR).expect("the compiled descriptor set decodes")
});

fn descriptor<M: prost::Name>() -> Result<MessageDescriptor, ApiError> {
    POOL.get_message_by_name(&M::full_name())
        .ok_or_else(|| ApiError::Internal(format!("no descriptor for {}", M::full_name())))
}

/// The JSON document of a request message.
pub fn document<M: prost::Message + prost::Name>(message: &M) -> Result<Value, ApiError> {
    let desc = descriptor::<M>()?;
    let dynamic = DynamicMessage::decode(desc.clone(), message.encode_to_vec().as_slice())
        .map_err(|e| ApiError::Internal(format!("re-reading a {}: {e}", M::full_name())))?;
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false)
        .skip_default_fields(true);
    let mut value = dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| ApiError::Internal(format!("writing a {}: {e}", M::full_name())))?;
    json_shapes(&mut value, &desc);
    Ok(value)
}

/// The request message's document as the bytes of an HTTP body.
pub fn body<M: prost::Message + prost::Name>(message: &M) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(&document(message)?).map_err(|e| ApiError::Internal(e.to_string()))
}

/// The message of a result document, read by the serde derive that `build.rs` gives every
/// message without a `oneof` or a well-known type: one pass from the document to the typed
/// answer, a field the `.proto` does not declare refused.
pub fn message<M: DeserializeOwned + prost::Name>(value: Value) -> Result<M, ApiError> {
    M::deserialize(value)
        .map_err(|e| ApiError::Internal(format!("a result does not fit {}: {e}", M::full_name())))
}

/// The message of a document whose message has no serde derive (it holds a `oneof`, or a
/// `google.protobuf.Struct` or `Value`: events and the tools), through a dynamic message and
/// a transcode.
pub fn dynamic_message<M: prost::Message + prost::Name + Default>(
    value: Value,
) -> Result<M, ApiError> {
    let desc = descriptor::<M>()?;
    let dynamic = DynamicMessage::deserialize_with_options(
        desc,
        value,
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .map_err(|e| ApiError::Internal(format!("a result does not fit {}: {e}", M::full_name())))?;
    dynamic
        .transcode_to::<M>()
        .map_err(|e| ApiError::Internal(format!("encoding a {}: {e}", M::full_name())))
}

/// In JSON a matrix row is the bare array of its values.
impl From<Vec<f64>> for proto::Row {
    fn from(values: Vec<f64>) -> Self {
        Self { values }
    }
}

/// A `google.protobuf.Struct` holds every number as a double: write those that are whole
/// as integers (`2000`, not `2000.0`), as JSON does not tell them apart but the request types
/// do (`options.paths` is an integer).
pub fn whole_numbers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(x) = n
                .as_f64()
                .filter(|x| x.fract() == 0.0 && x.abs() < 2f64.powi(53))
            {
                *value = Value::from(x as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        Value::Object(map) => map.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// Whether a message is a bare list in JSON: its one field is `repeated ... values` (a
/// matrix's `Row`, a withdrawal order's `AccountKinds`).
fn is_bare_list(desc: &MessageDescriptor) -> bool {
    let mut fields = desc.fields();
    matches!((fields.next(), fields.next()), (Some(f), None) if f.name() == "values" && f.is_list())
}

/// Whether a message is a choice of shapes in JSON: every field is in one real `oneof`
/// named `either`, and the document is the set field's value alone.
fn is_either(desc: &MessageDescriptor) -> bool {
    desc.oneofs().any(|o| {
        !o.is_synthetic() && o.name() == "either" && o.fields().len() == desc.fields().len()
    })
}

/// Write `value`, the proto3 JSON of a message of `desc`, in the JSON document's shapes: a
/// bare list as its array ([`is_bare_list`]), a choice as its set field's value
/// ([`is_either`]), at any depth.
fn json_shapes(value: &mut Value, desc: &MessageDescriptor) {
    if is_bare_list(desc) {
        *value = value
            .get_mut("values")
            .map(Value::take)
            .unwrap_or_else(|| Value::Array(Vec::new()));
        return;
    }
    let Some(object) = value.as_object_mut() else {
        return;
    };
    for field in desc.fields() {
        let (Some(v), Kind::Message(inner)) = (object.get_mut(field.name()), field.kind()) else {
            continue;
        };
        if field.is_map() {
            continue;
        }
        match v {
            Value::Array(items) => items.iter_mut().for_each(|i| json_shapes(i, &inner)),
            _ => json_shapes(v, &inner),
        }
    }
    // A number field's object form, added beside it as `<field>_model`, is written as the
    // field itself; with both set the `_model` key stays, and the validator names it.
    for field in desc.fields() {
        let Some(number) = field.name().strip_suffix("_model") else {
            continue;
        };
        if desc.get_field_by_name(number).is_some() && !object.contains_key(number) {
            if let Some(model) = object.remove(field.name()) {
                object.insert(number.to_string(), model);
            }
        }
    }
    if is_either(desc) {
        if let Some(chosen) = object.values_mut().next().map(Value::take) {
            *value = chosen;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{Goal, GoalRequest, Market, Options, Row, SimulationResult};
    use serde_json::json;

    #[test]
    fn a_request_message_is_its_json_document() {
        let request = GoalRequest {
            goal: Some(Goal {
                initial_wealth: Some(0.0),
                horizon_months: Some(360),
                target_amount: Some(1e6),
                ..Default::default()
            }),
            market: Some(Market {
                fee: Some(0.0075),
                model: Some(proto::ReturnModel {
                    kind: "student_t".into(),
                    df: Some(4.0),
                    ..Default::default()
                }),
                weights: vec![0.6, 0.4],
                correlations: vec![
                    Row {
                        values: vec![1.0, 0.2],
                    },
                    Row {
                        values: vec![0.2, 1.0],
                    },
                ],
                ..Default::default()
            }),
            options: Some(Options {
                seed: Some(u64::MAX),
                ..Default::default()
            }),
        };
        // A field set to 0 is sent (optional scalars have presence); an unset one is not; a
        // 64-bit seed stays a number; a matrix is rows of numbers.
        assert_eq!(
            document(&request).unwrap(),
            json!({
                "goal": {"initial_wealth": 0.0, "horizon_months": 360, "target_amount": 1e6},
                "market": {"weights": [0.6, 0.4], "correlations": [[1.0, 0.2], [0.2, 1.0]],
                           "fee": 0.0075, "model": {"kind": "student_t", "df": 4.0}},
                "options": {"seed": u64::MAX},
            })
        );
        // The engine reads the model from it.
        let engine: sextant_engine::GoalRequest =
            serde_json::from_value(document(&request).unwrap()).unwrap();
        assert_eq!(
            engine.market.model,
            sextant_engine::request::ReturnModel::StudentT { df: 4.0 }
        );
    }

    #[test]
    fn a_regime_market_message_is_its_json_document() {
        let market = Market {
            expected_return: Some(0.07),
            volatility: Some(0.15),
            model: Some(proto::ReturnModel {
                kind: "regime".into(),
                regimes: vec![
                    proto::Regime {
                        name: "calm".into(),
                        ..Default::default()
                    },
                    proto::Regime {
                        name: "crisis".into(),
                        expected_return: Some(-0.1),
                        volatility: Some(0.35),
                        ..Default::default()
                    },
                ],
                transition: vec![
                    Row {
                        values: vec![0.97, 0.03],
                    },
                    Row {
                        values: vec![0.15, 0.85],
                    },
                ],
                initial: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        };
        let request = GoalRequest {
            goal: Some(Goal {
                horizon_months: Some(12),
                ..Default::default()
            }),
            market: Some(market),
            options: None,
        };
        let engine: sextant_engine::GoalRequest =
            serde_json::from_value(document(&request).unwrap()).unwrap();
        let expected: sextant_engine::request::ReturnModel = serde_json::from_value(json!({
            "kind": "regime", "initial": 1,
            "regimes": [{"name": "calm"},
                        {"name": "crisis", "expected_return": -0.1, "volatility": 0.35}],
            "transition": [[0.97, 0.03], [0.15, 0.85]]
        }))
        .unwrap();
        assert_eq!(engine.market.model, expected);
        // Unset, the start is the stationary distribution.
        let mut stationary = request.clone();
        stationary
            .market
            .as_mut()
            .unwrap()
            .model
            .as_mut()
            .unwrap()
            .initial = None;
        let engine: sextant_engine::GoalRequest =
            serde_json::from_value(document(&stationary).unwrap()).unwrap();
        let sextant_engine::request::ReturnModel::Regime { initial, .. } = engine.market.model
        else {
            panic!("not a regime model")
        };
        assert_eq!(initial, sextant_engine::request::RegimeStart::default());
    }

    #[test]
    fn inflation_model_is_the_object_form_of_inflation_and_real_wealth_travels_back() {
        let request = GoalRequest {
            goal: Some(Goal {
                initial_wealth: Some(100000.0),
                horizon_months: Some(24),
                target_amount: Some(90000.0),
                ..Default::default()
            }),
            market: Some(Market {
                expected_return: Some(0.05),
                volatility: Some(0.1),
                inflation_model: Some(proto::InflationModel {
                    kind: "ar1".into(),
                    mean: Some(0.03),
                    volatility: Some(0.02),
                    correlation: Some(-0.3),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            options: None,
        };
        let written = document(&request).unwrap();
        assert_eq!(
            written["market"]["inflation"],
            json!({"kind": "ar1", "mean": 0.03, "volatility": 0.02, "correlation": -0.3})
        );
        let engine: sextant_engine::GoalRequest = serde_json::from_value(written).unwrap();
        let result = sextant_engine::Engine::default().simulate(&engine).unwrap();
        let typed: SimulationResult = message(serde_json::to_value(&result).unwrap()).unwrap();
        let real = typed.real.expect("the real fan chart travels");
        assert_eq!(real.yearly.len(), 2);
        assert_eq!(
            real.terminal.unwrap().mean,
            result.real.unwrap().terminal.mean
        );
        // Both forms at once: the `_model` key stays, and reading the document names it.
        let mut both = request.clone();
        both.market.as_mut().unwrap().inflation = Some(0.02);
        let err = serde_json::from_value::<sextant_engine::GoalRequest>(document(&both).unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("inflation_model"), "{err}");
    }

    #[test]
    fn a_rebalancing_rule_is_its_word_or_object_and_its_statistics_travel_back() {
        let market = |rebalancing: proto::rebalancing::Either| Market {
            assets: vec![
                proto::Asset {
                    name: "stocks".into(),
                    expected_return: Some(0.07),
                    volatility: Some(0.16),
                },
                proto::Asset {
                    name: "bonds".into(),
                    expected_return: Some(0.03),
                    volatility: Some(0.05),
                },
            ],
            weights: vec![0.6, 0.4],
            rebalancing: Some(proto::Rebalancing {
                either: Some(rebalancing),
            }),
            ..Default::default()
        };
        let request = |market: Market| GoalRequest {
            goal: Some(Goal {
                initial_wealth: Some(100000.0),
                horizon_months: Some(36),
                ..Default::default()
            }),
            market: Some(market),
            options: None,
        };
        let word = document(&request(market(proto::rebalancing::Either::Word(
            "annual".into(),
        ))))
        .unwrap();
        assert_eq!(word["market"]["rebalancing"], json!("annual"));
        let band = document(&request(market(proto::rebalancing::Either::Rule(
            proto::RebalancingRule {
                kind: "band".into(),
                band: Some(0.05),
            },
        ))))
        .unwrap();
        assert_eq!(
            band["market"]["rebalancing"],
            json!({"kind": "band", "band": 0.05})
        );
        let engine: sextant_engine::GoalRequest = serde_json::from_value(band).unwrap();
        let result = sextant_engine::Engine::default().simulate(&engine).unwrap();
        let typed: SimulationResult = message(serde_json::to_value(&result).unwrap()).unwrap();
        let stats = typed
            .rebalancing
            .expect("the rebalancing statistics travel");
        assert_eq!(stats.rule, "band");
        assert_eq!(
            stats.mean_turnover,
            result.rebalancing.unwrap().mean_turnover
        );
    }

    #[test]
    fn a_result_document_is_its_message_and_an_undeclared_field_is_refused() {
        let document = json!({
            "success_probability": 0.8, "standard_error": 0.004, "target_nominal": 2e6,
            "terminal": {"mean": 1.5e6, "percentiles": {"p5": 1e5, "p97.5": 3e6}},
            "yearly": [{"month": 12, "percentiles": {}, "mean": 1.0, "depleted": 0.0}],
            "depletion": {"probability": 0.1, "median_month": null},
            "shortfall": null, "paths": 10000, "seed": 42, "backend": "cpu",
            "engine_version": "0.1.0",
        });
        let result: SimulationResult = message(document.clone()).unwrap();
        assert_eq!(result.terminal.unwrap().percentiles["p97.5"], 3e6);
        assert_eq!(result.shortfall, None);
        assert_eq!(result.depletion.unwrap().median_month, None);
        let mut drifted = document;
        drifted["new_figure"] = json!(1.0);
        assert!(message::<SimulationResult>(drifted).is_err());
    }

    #[test]
    fn the_serde_derive_reads_a_document_as_the_dynamic_message_does() {
        // Explicit JSON names ("95", "self"), a map, an unset optional and a matrix's rows.
        let risk = json!({
            "expected_return": 0.06, "volatility": 0.12, "minimum_acceptable_return": 0.0,
            "value_at_risk": {"parametric": {"95": 0.13, "99": 0.2, "amount_95": 13.0}},
            "paths": 1000, "seed": 7, "engine_version": "0.1.0",
        });
        let typed: proto::RiskResult = message(risk.clone()).unwrap();
        assert_eq!(typed, dynamic_message::<proto::RiskResult>(risk).unwrap());
        let levels = typed.value_at_risk.unwrap().parametric.unwrap();
        assert_eq!((levels.level_95, levels.amount_99), (0.13, None));
        let record = json!({"id": "a", "status": "done", "progress": 1.0, "seed": 1,
            "iterations": 2, "engine_version": "0.1.0", "created_at": -5, "self": "/v1/x"});
        let typed: proto::SimulationRecord = message(record.clone()).unwrap();
        assert_eq!(typed.self_link.as_deref(), Some("/v1/x"));
        assert_eq!(typed, dynamic_message(record).unwrap());
        let request = json!({"correlations": [[1.0, 0.2], [0.2, 1.0]]});
        let typed: proto::RiskRequest = message(request.clone()).unwrap();
        assert_eq!(typed.correlations[1].values, [0.2, 1.0]);
        assert_eq!(document(&typed).unwrap(), request);
    }

    #[test]
    fn a_plan_request_message_writes_its_choices_and_bare_lists_as_json_does() {
        use proto::{
            spending_rule, spending_start, withdrawal_order, Account, AccountKinds, BracketFill,
            Person, Plan, PlanRequest, RuleSpec, Spending, SpendingRule, SpendingStart, Tax,
            TaxBracket, WithdrawalOrder,
        };
        let word = |w: &str| w.to_string();
        let request = |start, rule, order| PlanRequest {
            plan: Some(Plan {
                people: vec![Person {
                    name: word("Ann"),
                    age: Some(60.0),
                    retirement_age: Some(65.0),
                    longevity: None,
                }],
                spending: Some(Spending {
                    essential: Some(4000.0),
                    start: Some(SpendingStart {
                        either: Some(start),
                    }),
                    rule: Some(SpendingRule { either: Some(rule) }),
                    ..Default::default()
                }),
                accounts: vec![Account {
                    name: word("ira"),
                    kind: word("tax_deferred"),
                    balance: Some(1e5),
                    ..Default::default()
                }],
                tax: Some(Tax {
                    brackets: vec![TaxBracket {
                        over: Some(0.0),
                        rate: Some(0.1),
                    }],
                    ..Default::default()
                }),
                withdrawal_order: Some(WithdrawalOrder {
                    either: Some(order),
                }),
                ..Default::default()
            }),
            market: Some(Market {
                expected_return: Some(0.05),
                volatility: Some(0.1),
                ..Default::default()
            }),
            options: None,
        };
        let numbers = document(&request(
            spending_start::Either::Month(12),
            spending_rule::Either::Rule(RuleSpec {
                kind: word("percent"),
                rate: Some(0.04),
                ..Default::default()
            }),
            withdrawal_order::Either::Sequence(AccountKinds {
                values: vec![word("tax_free"), word("taxable"), word("tax_deferred")],
            }),
        ))
        .unwrap();
        assert_eq!(
            numbers["plan"]["spending"],
            json!({"essential": 4000.0, "start": 12, "rule": {"kind": "percent", "rate": 0.04}})
        );
        assert_eq!(
            numbers["plan"]["withdrawal_order"],
            json!(["tax_free", "taxable", "tax_deferred"])
        );
        let words = document(&request(
            spending_start::Either::Word(word("retirement")),
            spending_rule::Either::Word(word("fixed")),
            withdrawal_order::Either::BracketFill(BracketFill {
                kind: word("bracket_fill"),
                up_to_rate: Some(0.12),
            }),
        ))
        .unwrap();
        assert_eq!(words["plan"]["spending"]["start"], "retirement");
        assert_eq!(words["plan"]["spending"]["rule"], "fixed");
        assert_eq!(
            words["plan"]["withdrawal_order"],
            json!({"kind": "bracket_fill", "up_to_rate": 0.12})
        );
        // Both are plan requests the engine reads and the one validator accepts.
        for document in [numbers, words] {
            let plan: sextant_engine::PlanRequest = serde_json::from_value(document).unwrap();
            sextant_engine::plan::prepare_plan(&plan).unwrap();
        }
    }
}
