//! The trained model as ONNX, sparse: `feature_ids int64[n]`, `feature_values float[n,1]` → `Gather` the n
//! active rows of W[D,C] → `Mul` by their values → `ReduceSum` over the rows → `Add` b[C] → `Div` T → `Softmax`
//! → probabilities float[1,C]. A message has ~70 active features of 65,536, so the graph reads ~70 rows instead
//! of all 2.6 MB of W a dense `MatMul` reads; the file stays the interchange format and tract still runs it.
//! Labels, version and feature dimension travel in `metadata_props`, so the file alone is enough to serve it. The metadata keys belong to `protofuse_triage` (the reader); this module must never
//! define keys of its own.

use prost::Message as _;
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, tensor_shape_proto, type_proto,
};

use protofuse_triage::{INPUT_IDS, INPUT_VALUES, META_DIM, META_FEATURES, META_LABELS, META_VERSION};

use super::linear::Linear;

/// ONNX `TensorProto.DataType.FLOAT`.
const FLOAT: i32 = 1;
/// ONNX `TensorProto.DataType.INT64`.
const INT64: i32 = 7;
/// ONNX `AttributeProto.AttributeType.INT`.
const ATTR_INT: i32 = 2;
/// Opset 13: Softmax over one axis, which is what this graph means.
const OPSET: i64 = 13;

/// The output tensor name.
pub const OUTPUT: &str = "probabilities";

/// Encodes the model, sparse, with its calibration temperature folded into the graph. The input names are the
/// server's ([`protofuse_triage::INPUT_IDS`], [`protofuse_triage::INPUT_VALUES`]).
pub(super) fn encode(model: &Linear, temperature: f32, labels: &[String], version: &str) -> Vec<u8> {
    let (d, c) = (model.dim as i64, model.classes as i64);
    let initializers = vec![
        tensor("W", vec![d, c], &model.w),
        tensor("B", vec![c], &model.b),
        tensor("T", vec![], &[temperature]),
        int64_tensor("rows", vec![1], &[0]),
    ];
    let nodes = vec![
        node("Gather", &["W", INPUT_IDS], "active", vec![int_attr("axis", 0)]),
        node("Mul", &["active", INPUT_VALUES], "weighted", vec![]),
        node(
            "ReduceSum",
            &["weighted", "rows"],
            "logits",
            vec![int_attr("keepdims", 1)],
        ),
        node("Add", &["logits", "B"], "biased", vec![]),
        node("Div", &["biased", "T"], "scaled", vec![]),
        node("Softmax", &["scaled"], OUTPUT, vec![int_attr("axis", -1)]),
    ];
    let graph = GraphProto {
        name: "protofuse-triage".to_owned(),
        node: nodes,
        initializer: initializers,
        input: vec![
            value_info(INPUT_IDS, INT64, &[Dim::Active]),
            value_info(INPUT_VALUES, FLOAT, &[Dim::Active, Dim::Fixed(1)]),
        ],
        output: vec![value_info(OUTPUT, FLOAT, &[Dim::Fixed(1), Dim::Fixed(c)])],
        ..GraphProto::default()
    };
    let meta = |key: &str, value: String| StringStringEntryProto {
        key: key.to_owned(),
        value,
    };
    graph_model(
        graph,
        vec![
            meta(META_LABELS, labels.join(",")),
            meta(META_VERSION, version.to_owned()),
            meta(META_DIM, model.dim.to_string()),
            meta(META_FEATURES, protofuse_triage::features::VERSION.to_string()),
        ],
    )
}

/// `graph` as a model file with `metadata`.
fn graph_model(graph: GraphProto, metadata: Vec<StringStringEntryProto>) -> Vec<u8> {
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
        metadata_props: metadata,
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

fn int64_tensor(name: &str, dims: Vec<i64>, data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.to_owned(),
        dims,
        data_type: INT64,
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

/// A dimension of a graph input or output.
#[derive(Clone, Copy)]
enum Dim {
    /// Known when the graph is written.
    Fixed(i64),
    /// The number of active features: one message's, known only when it is run.
    Active,
}

fn value_info(name: &str, elem_type: i32, shape: &[Dim]) -> ValueInfoProto {
    let dim = shape
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match *d {
                Dim::Fixed(n) => tensor_shape_proto::dimension::Value::DimValue(n),
                Dim::Active => tensor_shape_proto::dimension::Value::DimParam("n".to_owned()),
            }),
            ..tensor_shape_proto::Dimension::default()
        })
        .collect();
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type,
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

    use super::{Dim, FLOAT, OUTPUT, encode, graph_model, int_attr, node, value_info};
    use crate::linear::Linear;

    /// The same weights as the dense graph models were written as before sparse inference:
    /// `features float[1,D] → MatMul W → Add B → Div T → Softmax`.
    fn dense_twin(sparse: &ModelProto) -> Vec<u8> {
        let graph = sparse.graph.as_ref().unwrap();
        let initializer = |name: &str| graph.initializer.iter().find(|t| t.name == name).unwrap().clone();
        let w = initializer("W");
        let d = w.dims[0];
        let dense = tract_onnx::pb::GraphProto {
            name: graph.name.clone(),
            node: vec![
                node("MatMul", &["features", "W"], "logits", vec![]),
                node("Add", &["logits", "B"], "biased", vec![]),
                node("Div", &["biased", "T"], "scaled", vec![]),
                node("Softmax", &["scaled"], OUTPUT, vec![int_attr("axis", -1)]),
            ],
            initializer: vec![w, initializer("B"), initializer("T")],
            input: vec![value_info("features", FLOAT, &[Dim::Fixed(1), Dim::Fixed(d)])],
            output: graph.output.clone(),
            ..Default::default()
        };
        graph_model(dense, sparse.metadata_props.clone())
    }

    /// The shipped sparse model predicts what a dense MatMul over the same weights predicts, on the training
    /// file (every 7th example, to keep the unoptimised dense runs short).
    #[test]
    fn the_sparse_model_predicts_what_the_dense_one_does() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let bytes = std::fs::read(root.join("config/triage/model.onnx")).unwrap();
        let sparse = IntentModel::from_bytes(&bytes).unwrap();
        // The server's path: the recognised graph evaluated directly (`protofuse_triage` checks it against
        // tract's sparse run); the dense twin is run by tract.
        assert!(sparse.evaluated_directly());
        let dense = IntentModel::from_bytes(&dense_twin(&ModelProto::decode(bytes.as_slice()).unwrap())).unwrap();
        let data = std::fs::read_to_string(root.join("config/triage/data/train.jsonl")).unwrap();
        let mut compared = 0;
        for line in data.lines().step_by(7) {
            let example: serde_json::Value = serde_json::from_str(line).unwrap();
            let x = protofuse_triage::features::features(example["text"].as_str().unwrap(), sparse.dim());
            let (p, q) = (sparse.predict(&x).unwrap(), dense.predict(&x).unwrap());
            let argmax = |v: &[f32]| (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap();
            assert_eq!(argmax(&p), argmax(&q), "{line}");
            let gap = p.iter().zip(&q).map(|(a, b)| (a - b).abs()).fold(0.0_f32, f32::max);
            assert!(gap < 1e-5, "{line}: {p:?} vs {q:?}");
            compared += 1;
        }
        assert!(compared > 1000, "{compared}");
        // No active feature: the bias alone, as the dense model computes for a zero vector.
        let none = protofuse_triage::features::SparseVec::default();
        assert_eq!(sparse.predict(&none).unwrap().len(), sparse.labels().len());
        // An index past the dimension is refused, not handed to tract's Gather (which would panic).
        let outside = protofuse_triage::features::SparseVec {
            indices: vec![u32::try_from(sparse.dim()).unwrap()],
            values: vec![1.0],
        };
        assert!(sparse.predict(&outside).is_err());
    }

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
