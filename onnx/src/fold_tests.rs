//! Unit tests of the constant folder ([`crate::fold`], [`crate::arith`]): each case prints the
//! folded constant (dims and elements, `N` for the batch) or the error.

use expect_test::{Expect, expect};

use crate::arith::{self, Arith};
use crate::consts::{Budget, Const, Data, Int};
use crate::fold::{self, Fx};

fn show(r: Result<Const, crate::OnnxError>) -> String {
    match r {
        Err(e) => format!("error: {e}"),
        Ok(c) => {
            let elems: Vec<String> = match &c.data {
                Data::F32(v) => v.iter().map(|x| format!("{x}")).collect(),
                Data::Int(v) => v
                    .iter()
                    .map(|i| match i {
                        Int::V(x) => x.to_string(),
                        Int::Batch => "N".into(),
                    })
                    .collect(),
            };
            format!("{:?} [{}]", c.dims, elems.join(" "))
        }
    }
}

fn check(f: impl FnOnce(&mut Fx<'_>) -> Result<Const, crate::OnnxError>, want: Expect) {
    let mut budget = Budget::new(1 << 20);
    let mut fx = Fx {
        node: "n",
        op: "Op",
        out: "out",
        budget: &mut budget,
    };
    want.assert_eq(&show(f(&mut fx)));
}

fn iota(dims: Vec<usize>) -> Const {
    let n = dims.iter().product::<usize>() as i64;
    Const::ints(dims, (0..n).collect())
}

#[test]
fn slice() {
    // [0..10) with step -3 from the end: 9 6 3 0.
    check(
        |fx| fold::slice(fx, &iota(vec![10]), &[-1], &[i64::MIN], None, Some(&[-3])),
        expect!["[4] [9 6 3 0]"],
    );
    // Rows 1.., columns 0..3 step 2 of a 3x4 matrix.
    check(
        |fx| {
            fold::slice(
                fx,
                &iota(vec![3, 4]),
                &[1, 0],
                &[i64::MAX, 3],
                Some(&[0, -1]),
                Some(&[1, 2]),
            )
        },
        expect!["[2, 2] [4 6 8 10]"],
    );
    check(
        |fx| fold::slice(fx, &iota(vec![0]), &[0], &[5], None, Some(&[-1])),
        expect!["[0] []"],
    );
    check(
        |fx| fold::slice(fx, &iota(vec![4]), &[0], &[4], Some(&[0, 0]), None),
        expect![
            "error: node `n` (Op): cannot fold to a constant: starts, ends, axes and steps differ in length"
        ],
    );
}

#[test]
fn gather_and_concat() {
    // Column gather from a 2x3 matrix with a negative index.
    check(
        |fx| fold::gather(fx, &iota(vec![2, 3]), &Const::ints(vec![2], vec![-1, 0]), 1),
        expect!["[2, 2] [2 0 5 3]"],
    );
    // Scalar index drops the axis.
    check(
        |fx| fold::gather(fx, &iota(vec![3]), &Const::ints(vec![], vec![1]), 0),
        expect!["[] [1]"],
    );
    let a = iota(vec![2, 1]);
    let b = Const::ints(vec![2, 2], vec![7, 8, 9, 10]);
    check(
        |fx| fold::concat(fx, &[&a, &b], -1),
        expect!["[2, 3] [0 7 8 1 9 10]"],
    );
}

#[test]
fn shape_of_keeps_the_batch_symbol() {
    use excite_ir::Dim;
    let dims = [Dim::Batch, Dim::Fixed(3), Dim::Fixed(5)];
    check(
        |_| Ok(fold::shape_of(&dims, 0, None)),
        expect!["[3] [N 3 5]"],
    );
    check(
        |_| Ok(fold::shape_of(&dims, -2, Some(-1))),
        expect!["[1] [3]"],
    );
}

#[test]
fn integer_arithmetic_and_the_batch() {
    let batch = Const {
        dims: vec![2],
        data: Data::Int(vec![Int::Batch, Int::V(6)]),
    };
    // N*1 stays N; broadcasting a [1] operand.
    check(
        |fx| arith::binary(fx, Arith::Mul, &batch, &Const::ints(vec![1], vec![1])),
        expect!["[2] [N 6]"],
    );
    check(
        |fx| arith::binary(fx, Arith::Div, &batch, &Const::ints(vec![2], vec![1, 4])),
        expect!["[2] [N 1]"],
    );
    check(
        |fx| arith::binary(fx, Arith::Mul, &batch, &Const::ints(vec![1], vec![2])),
        expect![
            "error: node `n` (Op): cannot fold to a constant: the value depends on the symbolic batch size in a way that cannot be folded; export the model with a fixed batch size"
        ],
    );
    check(
        |fx| {
            arith::binary(
                fx,
                Arith::Add,
                &Const::ints(vec![], vec![i64::MAX]),
                &Const::ints(vec![], vec![1]),
            )
        },
        expect![
            "error: node `n` (Op): cannot fold to a constant: integer overflow in 9223372036854775807 Add 1"
        ],
    );
    // -7 / 2 truncates toward zero, as ONNX Runtime's integer Div does.
    check(
        |fx| {
            arith::binary(
                fx,
                Arith::Div,
                &Const::ints(vec![], vec![-7]),
                &Const::ints(vec![], vec![2]),
            )
        },
        expect!["[] [-3]"],
    );
}

#[test]
fn float_broadcasting() {
    let a = Const {
        dims: vec![2, 1],
        data: Data::F32(vec![1.0, 2.0]),
    };
    let b = Const {
        dims: vec![3],
        data: Data::F32(vec![10.0, 20.0, 30.0]),
    };
    check(
        |fx| arith::binary(fx, Arith::Sub, &a, &b),
        expect!["[2, 3] [-9 -19 -29 -8 -18 -28]"],
    );
}

#[test]
fn cast_range_constant_of_shape() {
    let f = Const {
        dims: vec![3],
        data: Data::F32(vec![-2.7, 0.0, 3.9]),
    };
    check(|fx| arith::cast(fx, &f, 7), expect!["[3] [-2 0 3]"]);
    check(|fx| arith::cast(fx, &f, 9), expect!["[3] [1 0 1]"]);
    let s = |v: i64| Const::ints(vec![], vec![v]);
    check(
        |fx| arith::range(fx, &s(10), &s(1), &s(-4)),
        expect!["[3] [10 6 2]"],
    );
    check(
        |fx| arith::range(fx, &s(0), &s(5), &s(0)),
        expect!["error: node `n` (Op): cannot fold to a constant: delta is 0"],
    );
    check(
        |fx| arith::constant_of_shape(fx, &Const::ints(vec![2], vec![2, 2]), None),
        expect!["[2, 2] [0 0 0 0]"],
    );
    check(
        |fx| arith::constant_of_shape(fx, &Const::ints(vec![2], vec![1 << 20, 1 << 20]), None),
        expect![
            "error: tensor `out` needs 4398046511104 bytes, over the memory budget of 1048576 bytes"
        ],
    );
}

#[test]
fn reshape_dims() {
    let b = &mut Budget::new(1 << 20);
    let fx = Fx {
        node: "n",
        op: "Reshape",
        out: "o",
        budget: b,
    };
    assert_eq!(
        fold::reshape_dims(&fx, &[2, 3, 4], &[0, -1], false).ok(),
        Some(vec![2, 12])
    );
    assert_eq!(
        fold::reshape_dims(&fx, &[2, 3, 4], &[4, 0, 2], true).ok(),
        None
    );
    assert_eq!(
        fold::reshape_dims(&fx, &[2, 0], &[0, 5], true).ok(),
        Some(vec![0, 5])
    );
}
