// RUN: edgeq-opt %s --edgeq-depthwise-to-nhwc | filecheck %s

// CHECK-LABEL: func.func @dw
// CHECK:         %[[X:.*]] = linalg.transpose ins(%arg0 : tensor<1x8x6x6xi32>) outs(%{{.*}} : tensor<1x6x6x8xi32>) permutation = [0, 2, 3, 1]
// CHECK:         %[[W:.*]] = linalg.transpose ins(%arg1 : tensor<8x3x3xi32>) outs(%{{.*}} : tensor<3x3x8xi32>) permutation = [1, 2, 0]
// CHECK:         %[[A:.*]] = linalg.transpose ins(%arg2 : tensor<1x8x2x2xi32>) outs(%{{.*}} : tensor<1x2x2x8xi32>) permutation = [0, 2, 3, 1]
// CHECK:         %[[Y:.*]] = linalg.depthwise_conv_2d_nhwc_hwc {{.*}}strides = dense<2>{{.*}} ins(%[[X]], %[[W]] : tensor<1x6x6x8xi32>, tensor<3x3x8xi32>) outs(%[[A]] : tensor<1x2x2x8xi32>)
// CHECK:         %[[O:.*]] = linalg.transpose ins(%[[Y]] : tensor<1x2x2x8xi32>) outs(%{{.*}} : tensor<1x8x2x2xi32>) permutation = [0, 3, 1, 2]
// CHECK-NEXT:    return %[[O]]
func.func @dw(%x: tensor<1x8x6x6xi32>, %w: tensor<8x3x3xi32>, %acc: tensor<1x8x2x2xi32>) -> tensor<1x8x2x2xi32> {
  %y = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w : tensor<1x8x6x6xi32>, tensor<8x3x3xi32>) outs(%acc : tensor<1x8x2x2xi32>) -> tensor<1x8x2x2xi32>
  return %y : tensor<1x8x2x2xi32>
}

// Negative: already channels-last.
// CHECK-LABEL: func.func @dw_nhwc
// CHECK-NOT:     linalg.transpose
// CHECK:         linalg.depthwise_conv_2d_nhwc_hwc
// CHECK-NOT:     linalg.transpose
func.func @dw_nhwc(%x: tensor<1x6x6x8xi32>, %w: tensor<3x3x8xi32>, %acc: tensor<1x4x4x8xi32>) -> tensor<1x4x4x8xi32> {
  %y = linalg.depthwise_conv_2d_nhwc_hwc {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x6x6x8xi32>, tensor<3x3x8xi32>) outs(%acc : tensor<1x4x4x8xi32>) -> tensor<1x4x4x8xi32>
  return %y : tensor<1x4x4x8xi32>
}
