//! The trained model as ONNX: `features float[1,D] → MatMul W[D,C] → Add b[C] → Div T → Softmax →
//! probabilities float[1,C]`. Labels, version and feature dimension travel in `metadata_props`, so the file
//! alone is enough to serve it. The metadata keys belong to `protofuse_triage` (the reader); this module must never
//! define keys of its own.

use prost::Message as _;
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, tensor_shape_proto, type_proto,
};

use protofuse_triage::{META_DIM, META_FEATURES, META_LABELS, META_VERSION};

use super::linear::Linear;

/// ONNX `TensorProto.DataType.FLOAT`.
const FLOAT: i32 = 1;
/// ONNX `AttributeProto.AttributeType.INT`.
const ATTR_INT: i32 = 2;
/// Opset 13: Softmax over one axis, which is what this graph means.
const OPSET: i64 = 13;

/// Input and output tensor names.
pub const INPUT: &str = "features";
/// The output tensor name.
pub const OUTPUT: &str = "probabilities";

/// Encodes the model with its calibration temperature folded into the graph.
pub(super) fn encode(model: &Linear, temperature: f32, labels: &[String], version: &str) -> Vec<u8> {
    let (d, c) = (model.dim as i64, model.classes as i64);
    let initializers = vec![
        tensor("W", vec![d, c], &model.w),
        tensor("B", vec![c], &model.b),
        tensor("T", vec![], &[temperature]),
    ];
    let nodes = vec![
        node("MatMul", &[INPUT, "W"], "logits", vec![]),
        node("Add", &["logits", "B"], "biased", vec![]),
        node("Div", &["biased", "T"], "scaled", vec![]),
        node("Softmax", &["scaled"], OUTPUT, vec![int_attr("axis", -1)]),
    ];
    let graph = GraphProto {
        name: "protofuse-triage".to_owned(),
        node: nodes,
        initializer: initializers,
        input: vec![value_info(INPUT, &[1, d])],
        output: vec![value_info(OUTPUT, &[1, c])],
        ..GraphProto::default()
    };
    let meta = |key: &str, value: String| StringStringEntryProto {
        key: key.to_owned(),
        value,
    };
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        // The command's name before training left the server binary; kept, so retraining reproduces the shipped
        // model byte for byte.
        producer_name: "protofuse triage train".to_owned(),
        producer_version: env!("CARGO_PKG_VERSION").to_owned(),
        doc_string: "intent classifier: hashed character/word n-grams, multinomial logistic regression".to_owned(),
        graph: Some(graph),
        metadata_props: vec![
            meta(META_LABELS, labels.join(",")),
            meta(META_VERSION, version.to_owned()),
            meta(META_DIM, model.dim.to_string()),
            meta(META_FEATURES, protofuse_triage::features::VERSION.to_string()),
        ],
        ..ModelProto::default()
    }
    .encode_to_vec()
}

fn tensor(name: &str, dims: Vec<i64>, data: &[f32]) -> TensorProto {
    TensorProto {
        name: name.to_owned(),
        dims,
        data_type: FLOAT,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..TensorProto::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        name: format!("{op}_{output}"),
        op_type: op.to_owned(),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: vec![output.to_owned()],
        attribute,
        ..NodeProto::default()
    }
}

fn int_attr(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        r#type: ATTR_INT,
        i,
        ..AttributeProto::default()
    }
}

fn value_info(name: &str, shape: &[i64]) -> ValueInfoProto {
    let dim = shape
        .iter()
        .map(|&n| tensor_shape_proto::Dimension {
            value: Some(tensor_shape_proto::dimension::Value::DimValue(n)),
            ..tensor_shape_proto::Dimension::default()
        })
        .collect();
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..TypeProto::default()
        }),
        ..ValueInfoProto::default()
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use tract_onnx::pb::ModelProto;

    use protofuse_triage::{IntentModel, META_FEATURES};

    use super::encode;
    use crate::linear::Linear;

    #[test]
    fn a_model_trained_on_another_tokenizer_version_is_refused() {
        let model = Linear {
            dim: 16,
            classes: 2,
            w: vec![0.0; 32],
            b: vec![0.0; 2],
        };
        let bytes = encode(&model, 1.0, &["a".into(), "b".into()], "test");
        assert!(IntentModel::from_bytes(&bytes).is_ok());

        let mut proto = ModelProto::decode(bytes.as_slice()).unwrap();
        proto.metadata_props.retain(|p| p.key != META_FEATURES);
        let refused = IntentModel::from_bytes(&proto.encode_to_vec()).unwrap_err();
        let refused = std::error::Error::source(&refused)
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(
            refused.contains("tokenizer version 1") && refused.contains("protofuse triage train"),
            "{refused}"
        );
    }
}
