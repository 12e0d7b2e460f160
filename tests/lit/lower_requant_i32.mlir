// RUN: edgeq-opt %s --edgeq-lower-requant-i32 | filecheck %s

#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#ch = affine_map<(d0, d1, d2, d3) -> (d1, 0, 0)>
#par4 = ["parallel", "parallel", "parallel", "parallel"]

// The chain of tests/lit/lower_requant.mlir, fused into one generic with no i64 value (the Vulkan form):
// the 64-bit product from 16-bit halves, the signed correction, the rounding added to the high word
// (c = 38 >= 33), the shift of the high word by c - 32, the clamp.
// CHECK-LABEL: func.func @requant
// CHECK:         %[[B32:.*]] = linalg.generic {{.*}} ins(%arg1 : tensor<8x1x1xi64>) outs(%{{.*}} : tensor<8x1x1xi32>)
// CHECK:         %[[Y:.*]] = linalg.generic {{.*}} ins(%arg0, %[[B32]] : tensor<1x8x4x4xi32>, tensor<8x1x1xi32>) outs(%{{.*}} : tensor<1x8x4x4xi8>)
// CHECK-NEXT:    ^bb0(%[[ACC:.*]]: i32, %[[M:.*]]: i32, %{{.*}}: i8):
// CHECK-NOT:       i64
// CHECK:           arith.constant 65535 : i32
// CHECK-COUNT-4:   arith.muli %{{.*}}, %{{.*}} : i32
// CHECK:           arith.cmpi slt, %[[ACC]], %{{.*}} : i32
// CHECK:           arith.cmpi slt, %[[M]], %{{.*}} : i32
// CHECK:           %[[HIGH:.*]] = arith.subi
// CHECK:           arith.constant 32 : i32
// CHECK:           %[[R:.*]] = arith.addi %[[HIGH]], %{{.*}} : i32
// CHECK:           arith.constant 6 : i32
// CHECK:           %[[S:.*]] = arith.shrsi %[[R]], %{{.*}} : i32
// CHECK:           %[[LO:.*]] = arith.maxsi %[[S]], %{{.*}} : i32
// CHECK:           arith.constant 255 : i32
// CHECK:           %[[HI:.*]] = arith.minsi %[[LO]], %{{.*}} : i32
// CHECK:           %[[Z:.*]] = arith.addi %[[HI]], %{{.*}} : i32
// CHECK:           arith.trunci %[[Z]] : i32 to i8
// CHECK-NOT:       i64
// CHECK:         return %[[Y]]
func.func @requant(%acc: tensor<1x8x4x4xi32>, %b: tensor<8x1x1xi64>) -> tensor<1x8x4x4xi8> {
  %round = arith.constant 137438953472 : i64
  %shift = arith.constant 38 : i64
  %zp = arith.constant -128 : i64
  %lo = arith.constant -128 : i64
  %hi = arith.constant 127 : i64
  %e = tensor.empty() : tensor<1x8x4x4xi64>
  %0 = linalg.generic {indexing_maps = [#id, #id], iterator_types = #par4} ins(%acc : tensor<1x8x4x4xi32>) outs(%e : tensor<1x8x4x4xi64>) {
  ^bb0(%in: i32, %out: i64):
    %x = arith.extsi %in : i32 to i64
    linalg.yield %x : i64
  } -> tensor<1x8x4x4xi64>
  %1 = linalg.generic {indexing_maps = [#id, #ch, #id], iterator_types = #par4} ins(%0, %b : tensor<1x8x4x4xi64>, tensor<8x1x1xi64>) outs(%e : tensor<1x8x4x4xi64>) {
  ^bb0(%in: i64, %m: i64, %out: i64):
    %x = arith.muli %in, %m : i64
    linalg.yield %x : i64
  } -> tensor<1x8x4x4xi64>
  %2 = linalg.generic {indexing_maps = [#id, #id], iterator_types = #par4} ins(%1 : tensor<1x8x4x4xi64>) outs(%e : tensor<1x8x4x4xi64>) {
  ^bb0(%in: i64, %out: i64):
    %x = arith.addi %in, %round : i64
    linalg.yield %x : i64
  } -> tensor<1x8x4x4xi64>
  %3 = linalg.generic {indexing_maps = [#id, #id], iterator_types = #par4} ins(%2 : tensor<1x8x4x4xi64>) outs(%e : tensor<1x8x4x4xi64>) {
  ^bb0(%in: i64, %out: i64):
    %x = arith.shrsi %in, %shift : i64
    linalg.yield %x : i64
  } -> tensor<1x8x4x4xi64>
  %4 = linalg.generic {indexing_maps = [#id, #id], iterator_types = #par4} ins(%3 : tensor<1x8x4x4xi64>) outs(%e : tensor<1x8x4x4xi64>) {
  ^bb0(%in: i64, %out: i64):
    %x = arith.addi %in, %zp : i64
    linalg.yield %x : i64
  } -> tensor<1x8x4x4xi64>
  %5 = linalg.generic {indexing_maps = [#id, #id], iterator_types = #par4} ins(%4 : tensor<1x8x4x4xi64>) outs(%e : tensor<1x8x4x4xi64>) {
  ^bb0(%in: i64, %out: i64):
    %x = arith.maxsi %in, %lo : i64
    %y = arith.minsi %x, %hi : i64
    linalg.yield %y : i64
  } -> tensor<1x8x4x4xi64>
  %e8 = tensor.empty() : tensor<1x8x4x4xi8>
  %6 = linalg.generic {indexing_maps = [#id, #id], iterator_types = #par4} ins(%5 : tensor<1x8x4x4xi64>) outs(%e8 : tensor<1x8x4x4xi8>) {
  ^bb0(%in: i64, %out: i8):
    %x = arith.trunci %in : i64 to i8
    linalg.yield %x : i8
  } -> tensor<1x8x4x4xi8>
  return %6 : tensor<1x8x4x4xi8>
}
