// RUN: edgeq-opt %s --edgeq-isolate-i8-extensions | filecheck %s

#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>

// An i8 conv (what edgeq-raise-int-contraction makes): each i8 operand is extended in its own generic behind
// a barrier, and the conv reads i32.
// CHECK-LABEL: func.func @conv_i8
// CHECK:         %[[X:.*]] = linalg.generic {{.*}} ins(%arg0 : tensor<1x8x4x4xi8>) outs(%{{.*}} : tensor<1x8x4x4xi32>)
// CHECK:           arith.extsi %{{.*}} : i8 to i32
// CHECK:         %[[XB:.*]] = util.optimization_barrier %[[X]] : tensor<1x8x4x4xi32>
// CHECK:         %[[W:.*]] = linalg.generic {{.*}} ins(%arg1 : tensor<16x8x1x1xi8>) outs(%{{.*}} : tensor<16x8x1x1xi32>)
// CHECK:         %[[WB:.*]] = util.optimization_barrier %[[W]] : tensor<16x8x1x1xi32>
// CHECK:         %[[Y:.*]] = linalg.conv_2d_nchw_fchw {{.*}}strides = dense<2>{{.*}} ins(%[[XB]], %[[WB]] : tensor<1x8x4x4xi32>, tensor<16x8x1x1xi32>) outs(%arg2 : tensor<1x16x2x2xi32>)
// CHECK-NEXT:    return %[[Y]]
func.func @conv_i8(%x: tensor<1x8x4x4xi8>, %w: tensor<16x8x1x1xi8>, %acc: tensor<1x16x2x2xi32>) -> tensor<1x16x2x2xi32> {
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w : tensor<1x8x4x4xi8>, tensor<16x8x1x1xi8>) outs(%acc : tensor<1x16x2x2xi32>) -> tensor<1x16x2x2xi32>
  return %y : tensor<1x16x2x2xi32>
}

// An elementwise extension (a residual input) gets a barrier, so IREE cannot fuse it into the consumer.
// CHECK-LABEL: func.func @residual
// CHECK:         %[[E:.*]] = linalg.generic {{.*}} ins(%arg0 : tensor<1x16x2x2xi8>)
// CHECK:         %[[EB:.*]] = util.optimization_barrier %[[E]] : tensor<1x16x2x2xi32>
// CHECK-NEXT:    return %[[EB]]
func.func @residual(%r: tensor<1x16x2x2xi8>) -> tensor<1x16x2x2xi32> {
  %e = tensor.empty() : tensor<1x16x2x2xi32>
  %0 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%r : tensor<1x16x2x2xi8>) outs(%e : tensor<1x16x2x2xi32>) {
  ^bb0(%in: i8, %out: i32):
    %x = arith.extsi %in : i8 to i32
    linalg.yield %x : i32
  } -> tensor<1x16x2x2xi32>
  return %0 : tensor<1x16x2x2xi32>
}

// Negative: an i32 conv has nothing to isolate.
// CHECK-LABEL: func.func @conv_i32
// CHECK-NOT:     util.optimization_barrier
// CHECK:         linalg.conv_2d_nchw_fchw {{.*}} ins(%arg0, %arg1 : tensor<1x8x4x4xi32>, tensor<16x8x1x1xi32>)
// CHECK-NOT:     util.optimization_barrier
func.func @conv_i32(%x: tensor<1x8x4x4xi32>, %w: tensor<16x8x1x1xi32>, %acc: tensor<1x16x2x2xi32>) -> tensor<1x16x2x2xi32> {
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w : tensor<1x8x4x4xi32>, tensor<16x8x1x1xi32>) outs(%acc : tensor<1x16x2x2xi32>) -> tensor<1x16x2x2xi32>
  return %y : tensor<1x16x2x2xi32>
}
