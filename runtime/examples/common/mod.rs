//! What the runtime's examples share.

use std::collections::HashMap;

use excite_ir::{Graph, Tensor};

/// A deterministic input in [-1, 1) for each graph input, its symbolic batch set to `batch`.
pub fn inputs(
    g: &Graph,
    batch: usize,
) -> Result<HashMap<String, Tensor>, Box<dyn std::error::Error>> {
    let mut inputs = HashMap::new();
    for &v in g.inputs() {
        let shape = g
            .value(v)
            .ty
            .as_ref()
            .ok_or("untyped input")?
            .shape
            .resolve(batch);
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        inputs.insert(g.value(v).name.clone(), Tensor::new(shape, data)?);
    }
    Ok(inputs)
}
