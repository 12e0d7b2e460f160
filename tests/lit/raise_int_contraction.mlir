// RUN: edgeq-opt %s --edgeq-raise-int-contraction | filecheck %s

#id4 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#id1 = affine_map<(d0) -> (d0)>
#id2 = affine_map<(d0, d1) -> (d0, d1)>

// What torch-mlir emits for an int32 conv of sign-extended int8: i64 accumulation, then a truncation.
// CHECK-LABEL: func.func @conv_i8
// CHECK-NOT:     arith.extsi
// CHECK:         %[[B:.*]] = linalg.broadcast ins(%arg2 : tensor<8xi32>) outs(%{{.*}} : tensor<1x8x6x6xi32>) dimensions = [0, 2, 3]
// CHECK:         %[[C:.*]] = linalg.conv_2d_nchw_fchw {{.*}} ins(%arg0, %arg1 : tensor<1x3x8x8xi8>, tensor<8x3x3x3xi8>) outs(%[[B]] : tensor<1x8x6x6xi32>) -> tensor<1x8x6x6xi32>
// CHECK-NEXT:    return %[[C]]
func.func @conv_i8(%x: tensor<1x3x8x8xi8>, %w: tensor<8x3x3x3xi8>, %bias: tensor<8xi32>) -> tensor<1x8x6x6xi32> {
  %e0 = tensor.empty() : tensor<1x3x8x8xi32>
  %x32 = linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x : tensor<1x3x8x8xi8>) outs(%e0 : tensor<1x3x8x8xi32>) {
  ^bb0(%in: i8, %out: i32):
    %0 = arith.extsi %in : i8 to i32
    linalg.yield %0 : i32
  } -> tensor<1x3x8x8xi32>
  %e1 = tensor.empty() : tensor<8x3x3x3xi32>
  %w32 = linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%w : tensor<8x3x3x3xi8>) outs(%e1 : tensor<8x3x3x3xi32>) {
  ^bb0(%in: i8, %out: i32):
    %0 = arith.extsi %in : i8 to i32
    linalg.yield %0 : i32
  } -> tensor<8x3x3x3xi32>
  %e2 = tensor.empty() : tensor<8xi64>
  %b64 = linalg.generic {indexing_maps = [#id1, #id1], iterator_types = ["parallel"]} ins(%bias : tensor<8xi32>) outs(%e2 : tensor<8xi64>) {
  ^bb0(%in: i32, %out: i64):
    %0 = arith.extsi %in : i32 to i64
    linalg.yield %0 : i64
  } -> tensor<8xi64>
  %e3 = tensor.empty() : tensor<1x8x6x6xi64>
  %init = linalg.broadcast ins(%b64 : tensor<8xi64>) outs(%e3 : tensor<1x8x6x6xi64>) dimensions = [0, 2, 3]
  %acc = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x32, %w32 : tensor<1x3x8x8xi32>, tensor<8x3x3x3xi32>) outs(%init : tensor<1x8x6x6xi64>) -> tensor<1x8x6x6xi64>
  %e4 = tensor.empty() : tensor<1x8x6x6xi32>
  %y = linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%acc : tensor<1x8x6x6xi64>) outs(%e4 : tensor<1x8x6x6xi32>) {
  ^bb0(%in: i64, %out: i32):
    %0 = arith.trunci %in : i64 to i32
    linalg.yield %0 : i32
  } -> tensor<1x8x6x6xi32>
  return %y : tensor<1x8x6x6xi32>
}

// A linear layer: the weight reaches the matmul through a transpose, the accumulator starts from a fill.
// CHECK-LABEL: func.func @matmul_i8
// CHECK:         %[[T:.*]] = linalg.transpose ins(%arg1 : tensor<10x32xi8>) outs(%{{.*}} : tensor<32x10xi8>) permutation = [1, 0]
// CHECK:         %[[Z:.*]] = linalg.fill ins(%{{.*}} : i32) outs(%{{.*}} : tensor<1x10xi32>)
// CHECK:         linalg.matmul ins(%arg0, %[[T]] : tensor<1x32xi8>, tensor<32x10xi8>) outs(%[[Z]] : tensor<1x10xi32>)
func.func @matmul_i8(%x: tensor<1x32xi8>, %w: tensor<10x32xi8>) -> tensor<1x10xi32> {
  %c0 = arith.constant 0 : i64
  %e0 = tensor.empty() : tensor<1x32xi32>
  %x32 = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<1x32xi8>) outs(%e0 : tensor<1x32xi32>) {
  ^bb0(%in: i8, %out: i32):
    %0 = arith.extsi %in : i8 to i32
    linalg.yield %0 : i32
  } -> tensor<1x32xi32>
  %e1 = tensor.empty() : tensor<10x32xi32>
  %w32 = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%w : tensor<10x32xi8>) outs(%e1 : tensor<10x32xi32>) {
  ^bb0(%in: i8, %out: i32):
    %0 = arith.extsi %in : i8 to i32
    linalg.yield %0 : i32
  } -> tensor<10x32xi32>
  %e2 = tensor.empty() : tensor<32x10xi32>
  %wt = linalg.transpose ins(%w32 : tensor<10x32xi32>) outs(%e2 : tensor<32x10xi32>) permutation = [1, 0]
  %e3 = tensor.empty() : tensor<1x10xi64>
  %zero = linalg.fill ins(%c0 : i64) outs(%e3 : tensor<1x10xi64>) -> tensor<1x10xi64>
  %acc = linalg.matmul ins(%x32, %wt : tensor<1x32xi32>, tensor<32x10xi32>) outs(%zero : tensor<1x10xi64>) -> tensor<1x10xi64>
  %e4 = tensor.empty() : tensor<1x10xi32>
  %y = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%acc : tensor<1x10xi64>) outs(%e4 : tensor<1x10xi32>) {
  ^bb0(%in: i64, %out: i32):
    %0 = arith.trunci %in : i64 to i32
    linalg.yield %0 : i32
  } -> tensor<1x10xi32>
  return %y : tensor<1x10xi32>
}

// Negative: the operands are sign-extended from i16, not i8 -- no int8 kernel applies; left untouched.
// CHECK-LABEL: func.func @matmul_i16_untouched
// CHECK:         arith.extsi %{{.*}} : i16 to i32
// CHECK:         linalg.matmul ins(%{{.*}}, %arg1 : tensor<4x8xi32>, tensor<8x4xi32>) outs(%{{.*}} : tensor<4x4xi32>)
func.func @matmul_i16_untouched(%x: tensor<4x8xi16>, %w: tensor<8x4xi32>, %init: tensor<4x4xi32>) -> tensor<4x4xi32> {
  %e0 = tensor.empty() : tensor<4x8xi32>
  %x32 = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<4x8xi16>) outs(%e0 : tensor<4x8xi32>) {
  ^bb0(%in: i16, %out: i32):
    %0 = arith.extsi %in : i16 to i32
    linalg.yield %0 : i32
  } -> tensor<4x8xi32>
  %y = linalg.matmul ins(%x32, %w : tensor<4x8xi32>, tensor<8x4xi32>) outs(%init : tensor<4x4xi32>) -> tensor<4x4xi32>
  return %y : tensor<4x4xi32>
}

// Negative: the i64 accumulator is returned whole, so narrowing it to i32 would change the result.
// CHECK-LABEL: func.func @i64_result_untouched
// CHECK:         linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<4x8xi32>, tensor<8x4xi32>) outs(%arg2 : tensor<4x4xi64>)
func.func @i64_result_untouched(%x: tensor<4x8xi8>, %w: tensor<8x4xi8>, %init: tensor<4x4xi64>) -> tensor<4x4xi64> {
  %e0 = tensor.empty() : tensor<4x8xi32>
  %x32 = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<4x8xi8>) outs(%e0 : tensor<4x8xi32>) {
  ^bb0(%in: i8, %out: i32):
    %0 = arith.extsi %in : i8 to i32
    linalg.yield %0 : i32
  } -> tensor<4x8xi32>
  %e1 = tensor.empty() : tensor<8x4xi32>
  %w32 = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%w : tensor<8x4xi8>) outs(%e1 : tensor<8x4xi32>) {
  ^bb0(%in: i8, %out: i32):
    %0 = arith.extsi %in : i8 to i32
    linalg.yield %0 : i32
  } -> tensor<8x4xi32>
  %y = linalg.matmul ins(%x32, %w32 : tensor<4x8xi32>, tensor<8x4xi32>) outs(%init : tensor<4x4xi64>) -> tensor<4x4xi64>
  return %y : tensor<4x4xi64>
}
