// RUN: edgeq-opt %s --edgeq-depthwise-taps | filecheck %s

// Stride 1: each tap a unit-stride slice of the input, each tap's weights a vector, one elementwise generic
// accumulating into the init.
// CHECK-LABEL: func.func @dw
// CHECK-NOT:     linalg.depthwise_conv_2d_nchw_chw
// CHECK:         tensor.extract_slice %arg0[0, 0, 0, 0] [1, 8, 4, 4] [1, 1, 1, 1] : tensor<1x8x6x6xi8> to tensor<1x8x4x4xi8>
// CHECK:         tensor.extract_slice %arg0[0, 0, 2, 2] [1, 8, 4, 4] [1, 1, 1, 1]
// CHECK:         tensor.extract_slice %arg1[0, 2, 2] [8, 1, 1] [1, 1, 1] : tensor<8x3x3xi8> to tensor<8xi8>
// CHECK:         %[[Y:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "parallel"]{{.*}} outs(%arg2 : tensor<1x8x4x4xi32>)
// CHECK:           %[[A:.*]] = arith.extsi %in : i8 to i32
// CHECK-NEXT:      %[[B:.*]] = arith.extsi %in_{{[0-9]+}} : i8 to i32
// CHECK-NEXT:      %[[P:.*]] = arith.muli %[[A]], %[[B]] : i32
// CHECK-NEXT:      arith.addi %out, %[[P]] : i32
// CHECK-COUNT-8:   arith.muli
// CHECK-NOT:       arith.muli
// CHECK:         return %[[Y]]
func.func @dw(%x: tensor<1x8x6x6xi8>, %w: tensor<8x3x3xi8>, %acc: tensor<1x8x4x4xi32>) -> tensor<1x8x4x4xi32> {
  %y = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x8x6x6xi8>, tensor<8x3x3xi8>) outs(%acc : tensor<1x8x4x4xi32>) -> tensor<1x8x4x4xi32>
  return %y : tensor<1x8x4x4xi32>
}

// Stride 2 over an odd 7x7 input: padded to 8x8, split into its 2x2 phase planes; tap (i, j) reads plane
// (i % 2, j % 2) from offset (i / 2, j / 2) with unit stride.
// CHECK-LABEL: func.func @dw_stride2
// CHECK:         %[[P:.*]] = tensor.pad %arg0 low[0, 0, 0, 0] high[0, 0, 1, 1]
// CHECK:         %[[S:.*]] = tensor.expand_shape %[[P]] {{\[}}[0], [1], [2, 3], [4, 5]] output_shape [1, 8, 4, 2, 4, 2]
// CHECK:         %[[T:.*]] = linalg.transpose ins(%[[S]] : tensor<1x8x4x2x4x2xi8>) outs(%{{.*}} : tensor<1x8x2x2x4x4xi8>) permutation = [0, 1, 3, 5, 2, 4]
// CHECK:         tensor.extract_slice %[[T]][0, 0, 0, 0, 0, 0] [1, 8, 1, 1, 3, 3] [1, 1, 1, 1, 1, 1] : tensor<1x8x2x2x4x4xi8> to tensor<1x8x3x3xi8>
// CHECK:         tensor.extract_slice %[[T]][0, 0, 0, 1, 0, 0] [1, 8, 1, 1, 3, 3]
// CHECK:         tensor.extract_slice %[[T]][0, 0, 0, 0, 0, 1] [1, 8, 1, 1, 3, 3]
// CHECK:         linalg.generic
func.func @dw_stride2(%x: tensor<1x8x7x7xi8>, %w: tensor<8x3x3xi8>, %acc: tensor<1x8x3x3xi32>) -> tensor<1x8x3x3xi32> {
  %y = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w : tensor<1x8x7x7xi8>, tensor<8x3x3xi8>) outs(%acc : tensor<1x8x3x3xi32>) -> tensor<1x8x3x3xi32>
  return %y : tensor<1x8x3x3xi32>
}

// Dilation 2: tap (i, j) starts at (2i, 2j). (torch has no int32 dilated conv, so the integer reference cannot
// check this numerically; these offsets are the check.)
// CHECK-LABEL: func.func @dw_dilated
// CHECK:         tensor.extract_slice %arg0[0, 0, 0, 0] [1, 8, 4, 4] [1, 1, 1, 1]
// CHECK:         tensor.extract_slice %arg0[0, 0, 0, 2] [1, 8, 4, 4] [1, 1, 1, 1]
// CHECK:         tensor.extract_slice %arg0[0, 0, 0, 4] [1, 8, 4, 4] [1, 1, 1, 1]
// CHECK:         tensor.extract_slice %arg0[0, 0, 2, 0] [1, 8, 4, 4] [1, 1, 1, 1]
// CHECK:         tensor.extract_slice %arg0[0, 0, 4, 4] [1, 8, 4, 4] [1, 1, 1, 1]
// CHECK:         linalg.generic
func.func @dw_dilated(%x: tensor<1x8x8x8xi8>, %w: tensor<8x3x3xi8>, %acc: tensor<1x8x4x4xi32>) -> tensor<1x8x4x4xi32> {
  %y = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<2> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x8x8x8xi8>, tensor<8x3x3xi8>) outs(%acc : tensor<1x8x4x4xi32>) -> tensor<1x8x4x4xi32>
  return %y : tensor<1x8x4x4xi32>
}
