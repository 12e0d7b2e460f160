// RUN: edgeq-opt %s --edgeq-conv-kernel | filecheck %s

// Two convs of one shape share one export of the kernel executable; the shim passes the shape and the workgroup.
// CHECK:       hal.executable.source private @edgeq_kernels <objects = <{#{{.*}} = [#hal.executable.object<{path = "{{.*}}/kernels/conv2d_u8s8_avx512vnni-{{[0-9a-f]+}}.o"}>]}>>
// CHECK:         hal.executable.export public @conv_3x10x10_24x3x3_s2x2_d1x1 ordinal(0)
// CHECK-DAG:       %[[GX:.*]] = arith.constant 1 : index
// CHECK-DAG:       %[[GY:.*]] = arith.constant 4 : index
// CHECK:           hal.return %[[GX]], %[[GY]], %{{.*}} : index, index, index
// CHECK-NOT:     hal.executable.export
// CHECK:         func.func private @edgeq_conv2d_u8s8({{.*}}) attributes {hal.import.static, llvm.bareptr = true}
// CHECK:         func.func @conv_3x10x10_24x3x3_s2x2_d1x1()
// CHECK:           call @edgeq_conv2d_u8s8(

// Input channels padded 3 -> 4, output channels 24 -> 32 (weights only); the input to NHWC with its sign bit
// flipped (x + 128 as u8), the weights packed 16 channels x 4 inputs, the sums started at -128 * sum(w).
// CHECK-LABEL: util.func private @edgeq_conv_3x10x10_24x3x3_s2x2_d1x1
// CHECK:         tensor.pad %arg0 low[0, 0, 0, 0] high[0, 1, 0, 0]
// CHECK:         %[[WP:.*]] = tensor.pad %arg1 low[0, 0, 0, 0] high[8, 1, 0, 0]
// CHECK:         %[[X:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<10x10x4xi8>)
// CHECK-NEXT:      ^bb0
// CHECK-NEXT:      arith.xori %in, %c-128_i8 : i8
// CHECK:         %[[W:.*]] = linalg.generic {{.*}} ins(%[[WP]] : tensor<32x4x3x3xi8>) outs(%{{.*}} : tensor<2x3x3x1x16x4xi8>)
// CHECK:         %[[B:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction", "reduction", "reduction"]{{.*}} ins(%[[WP]]
// CHECK:           arith.muli %{{.*}}, %c-128_i32 : i32
// CHECK:         %[[Y:.*]] = flow.dispatch @edgeq_kernels::@conv_3x10x10_24x3x3_s2x2_d1x1(%[[X]], %[[W]], %[[B]]) : {{.*}} -> tensor<4x4x32xi32>
// CHECK:         %[[S:.*]] = tensor.extract_slice %[[Y]][0, 0, 0] [4, 4, 24] [1, 1, 1]
// CHECK:         linalg.generic {{.*}} ins(%[[S]] : tensor<4x4x24xi32>) outs(%arg2 : tensor<1x24x4x4xi32>)
// CHECK:           arith.addi %in, %out : i32

// CHECK-LABEL: util.func public @two_convs
// CHECK-NOT:     linalg.conv_2d_nchw_fchw
// CHECK:         util.call @edgeq_conv_3x10x10_24x3x3_s2x2_d1x1(%arg0, %arg1, %arg2)
// CHECK:         util.call @edgeq_conv_3x10x10_24x3x3_s2x2_d1x1(%arg0, %arg1, %arg2)
util.func public @two_convs(%x: tensor<1x3x10x10xi8>, %w: tensor<24x3x3x3xi8>, %acc: tensor<1x24x4x4xi32>) -> (tensor<1x24x4x4xi32>, tensor<1x24x4x4xi32>) {
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w : tensor<1x3x10x10xi8>, tensor<24x3x3x3xi8>) outs(%acc : tensor<1x24x4x4xi32>) -> tensor<1x24x4x4xi32>
  %z = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w : tensor<1x3x10x10xi8>, tensor<24x3x3x3xi8>) outs(%acc : tensor<1x24x4x4xi32>) -> tensor<1x24x4x4xi32>
  util.return %y, %z : tensor<1x24x4x4xi32>, tensor<1x24x4x4xi32>
}

// Left alone: a batch of 2, a conv that does not read i8, a 1x1 conv (a matmul to IREE: no patches to gather).
// CHECK-LABEL: util.func public @batch2
// CHECK:         linalg.conv_2d_nchw_fchw
util.func public @batch2(%x: tensor<2x4x6x6xi8>, %w: tensor<16x4x3x3xi8>, %acc: tensor<2x16x4x4xi32>) -> tensor<2x16x4x4xi32> {
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<2x4x6x6xi8>, tensor<16x4x3x3xi8>) outs(%acc : tensor<2x16x4x4xi32>) -> tensor<2x16x4x4xi32>
  util.return %y : tensor<2x16x4x4xi32>
}
// CHECK-LABEL: util.func public @i32_operands
// CHECK:         linalg.conv_2d_nchw_fchw
util.func public @i32_operands(%x: tensor<1x4x6x6xi32>, %w: tensor<16x4x3x3xi32>, %acc: tensor<1x16x4x4xi32>) -> tensor<1x16x4x4xi32> {
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x4x6x6xi32>, tensor<16x4x3x3xi32>) outs(%acc : tensor<1x16x4x4xi32>) -> tensor<1x16x4x4xi32>
  util.return %y : tensor<1x16x4x4xi32>
}
// CHECK-LABEL: util.func public @one_by_one
// CHECK:         linalg.conv_2d_nchw_fchw
util.func public @one_by_one(%x: tensor<1x16x6x6xi8>, %w: tensor<32x16x1x1xi8>, %acc: tensor<1x32x6x6xi32>) -> tensor<1x32x6x6xi32> {
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x16x6x6xi8>, tensor<32x16x1x1xi8>) outs(%acc : tensor<1x32x6x6xi32>) -> tensor<1x32x6x6xi32>
  util.return %y : tensor<1x32x6x6xi32>
}
