// RUN: edgeq-opt %s --edgeq-conv-kernel | filecheck %s

// A 1x1 stride-2 conv beside a 3x3 stride-2 conv padded by 1 on the same input (ResNet's downsample and its block's
// first conv): the 3x3 conv's pack is a call of its own, before both, and the 1x1 conv reads phase plane (1, 1) of
// its result: 16 channels of 14 x 14 packed as 4 groups x 2 x 2 planes of 10 rows x 8 columns, so its binding
// starts 3 planes in (3 x 80 pixels x 4 bytes) and its shape says 2 x 2 planes of 80 pixels, 8 wide. It has no
// pack of its own.
// CHECK:       hal.executable.source private @edgeq_kernels
// CHECK:         hal.executable.export public @conv_16x16x16_24x3x3_s2x2_d1x1 ordinal(0)
// CHECK:         hal.executable.export public @pack_conv_16x16x16_24x3x3_s2x2_d1x1_14x14_t1l1_v251 ordinal(1)
// CHECK:         hal.executable.export public @conv_16x14x14_32x1x1_s2x2_d1x1_reads_10x8_t1l1 ordinal(2)
// CHECK-NOT:     hal.executable.export
// CHECK:         func.func @conv_16x14x14_32x1x1_s2x2_d1x1_reads_10x8_t1l1()
// CHECK:           %[[AT:.*]] = arith.constant 960 : index
// CHECK:           hal.interface.binding.subspan {{.*}} binding(0) alignment(64) offset(%[[AT]]) flags(ReadOnly)
// CHECK:           call @edgeq_conv2d_u8s8(%{{.*}}, %c4_i32, %c32_i32, %c4_i32_{{[0-9]+}}, %c1_i32, %c1_i32_{{[0-9]+}},
// CHECK-SAME:        %c2_i32, %c2_i32_{{[0-9]+}}, %c1_i32_{{[0-9]+}}, %c1_i32_{{[0-9]+}}, %c2_i32_{{[0-9]+}}, %c2_i32_{{[0-9]+}},
// CHECK-SAME:        %c8_i32, %c80_i32, %c7_i32, %c7_i32_{{[0-9]+}},
// CHECK-LABEL: util.func public @block
// CHECK:         %[[XK:.*]] = util.call @edgeq_pack_conv_16x16x16_24x3x3_s2x2_d1x1_14x14_t1l1_v251(%arg0)
// CHECK:         util.call @edgeq_conv_16x16x16_24x3x3_s2x2_d1x1_14x14_t1l1_v251_packed(%[[XK]],
// CHECK:         util.call @edgeq_conv_16x14x14_32x1x1_s2x2_d1x1_14x14_t0l0_v0_packed_reads_10x8_t1l1(%[[XK]],
util.func public @block(%x: tensor<1x16x14x14xi8>, %w3: tensor<24x16x3x3xi8>, %w1: tensor<32x16x1x1xi8>, %a3: tensor<1x24x7x7xi32>, %a1: tensor<1x32x7x7xi32>) -> (tensor<1x24x7x7xi32>, tensor<1x32x7x7xi32>) {
  %pv = arith.constant -5 : i8
  %xp = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %pv : i8
  } : tensor<1x16x14x14xi8> to tensor<1x16x16x16xi8>
  %y3 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%xp, %w3 : tensor<1x16x16x16xi8>, tensor<24x16x3x3xi8>) outs(%a3 : tensor<1x24x7x7xi32>) -> tensor<1x24x7x7xi32>
  %y1 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w1 : tensor<1x16x14x14xi8>, tensor<32x16x1x1xi8>) outs(%a1 : tensor<1x32x7x7xi32>) -> tensor<1x32x7x7xi32>
  util.return %y3, %y1 : tensor<1x24x7x7xi32>, tensor<1x32x7x7xi32>
}
