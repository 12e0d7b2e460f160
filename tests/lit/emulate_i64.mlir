// RUN: edgeq-opt %s --edgeq-emulate-i64 | filecheck %s

#id = affine_map<(d0, d1) -> (d0, d1)>
#ch = affine_map<(d0, d1) -> (d1)>

// TOSA's RESCALE (apply_scale with TFLite's double rounding and a per-channel shift), as IREE's TOSA input
// pipeline lowers it: every i64 becomes a (low, high) pair of i32 words.
// CHECK-LABEL: func.func @apply_scale
// CHECK-NOT:     arith.constant {{.*}} : i64
// CHECK:         linalg.generic
// CHECK-NEXT:    ^bb0(%[[A:.*]]: i32, %[[M:.*]]: i32, %[[S:.*]]: i8, %{{.*}}: i8):
// CHECK-NOT:       i64
// The sign words of the extended operands, then the product from 16-bit halves and the cross products:
// CHECK:           %[[AH:.*]] = arith.shrsi %[[A]], %{{.*}} : i32
// CHECK:           %[[MH:.*]] = arith.shrsi %[[M]], %{{.*}} : i32
// CHECK:           arith.constant 65535 : i32
// CHECK-COUNT-4:   arith.muli %{{.*}}, %{{.*}} : i32
// CHECK:           arith.muli %[[A]], %[[MH]] : i32
// CHECK:           arith.muli %[[AH]], %[[M]] : i32
// A variable shift (1 << s): the amount masked to 0..31 and the >= 32 form selected:
// CHECK:           %[[S32:.*]] = arith.extui %[[S]] : i8 to i32
// CHECK:           arith.andi %[[S32]], %{{.*}} : i32
// CHECK:           arith.cmpi uge, %[[S32]], %{{.*}} : i32
// The rounding term added with the carry out of the low word:
// CHECK:           %[[LOW:.*]] = arith.addi %{{.*}}, %{{.*}} : i32
// CHECK:           arith.cmpi ult, %[[LOW]], %{{.*}} : i32
// CHECK:           arith.extui %{{.*}} : i1 to i32
// The double rounding, as a select of word pairs:
// CHECK:           arith.constant 1073741824 : i32
// CHECK:           arith.constant -1073741824 : i32
// CHECK:           arith.select
// CHECK:           arith.select
// CHECK:           arith.shrsi
// CHECK:           %[[Q:.*]] = arith.select
// CHECK:           arith.addi %[[Q]], %{{.*}} : i32
// CHECK:           arith.trunci %{{.*}} : i32 to i8
// CHECK-NOT:       i64
// CHECK:         return
func.func @apply_scale(%acc: tensor<4x8xi32>, %m: tensor<8xi32>, %s: tensor<8xi8>) -> tensor<4x8xi8> {
  %c1 = arith.constant 1 : i64
  %c31 = arith.constant 31 : i32
  %c0 = arith.constant 0 : i32
  %pos = arith.constant 1073741824 : i64
  %neg = arith.constant -1073741824 : i64
  %zp = arith.constant -128 : i32
  %lo = arith.constant -128 : i32
  %hi = arith.constant 127 : i32
  %e = tensor.empty() : tensor<4x8xi8>
  %0 = linalg.generic {indexing_maps = [#id, #ch, #ch, #id], iterator_types = ["parallel", "parallel"]} ins(%acc, %m, %s : tensor<4x8xi32>, tensor<8xi32>, tensor<8xi8>) outs(%e : tensor<4x8xi8>) {
  ^bb0(%a: i32, %mul: i32, %sh: i8, %out: i8):
    %sh32 = arith.extui %sh : i8 to i32
    %a64 = arith.extsi %a : i32 to i64
    %m64 = arith.extsi %mul : i32 to i64
    %p = arith.muli %a64, %m64 : i64
    %sh64 = arith.extui %sh : i8 to i64
    %one = arith.shli %c1, %sh64 : i64
    %half = arith.shrui %one, %c1 : i64
    %r = arith.addi %p, %half : i64
    %nonneg = arith.cmpi sge, %a, %c0 : i32
    %dr = arith.select %nonneg, %pos, %neg : i64
    %r2 = arith.addi %dr, %r : i64
    %big = arith.cmpi sgt, %sh32, %c31 : i32
    %rr = arith.select %big, %r2, %r : i64
    %q = arith.shrsi %rr, %sh64 : i64
    %q32 = arith.trunci %q : i64 to i32
    %z = arith.addi %q32, %zp : i32
    %c = arith.maxsi %z, %lo : i32
    %d = arith.minsi %c, %hi : i32
    %y = arith.trunci %d : i32 to i8
    linalg.yield %y : i8
  } -> tensor<4x8xi8>
  return %0 : tensor<4x8xi8>
}

// An op the pass does not emulate (a division) leaves the whole body as it was.
// CHECK-LABEL: func.func @unsupported
// CHECK:         arith.muli %{{.*}}, %{{.*}} : i64
// CHECK:         arith.divsi %{{.*}}, %{{.*}} : i64
func.func @unsupported(%x: tensor<8xi32>) -> tensor<8xi32> {
  %d = arith.constant 3 : i64
  %e = tensor.empty() : tensor<8xi32>
  %0 = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%x : tensor<8xi32>) outs(%e : tensor<8xi32>) {
  ^bb0(%a: i32, %out: i32):
    %w = arith.extsi %a : i32 to i64
    %p = arith.muli %w, %w : i64
    %q = arith.divsi %p, %d : i64
    %t = arith.trunci %q : i64 to i32
    linalg.yield %t : i32
  } -> tensor<8xi32>
  return %0 : tensor<8xi32>
}
