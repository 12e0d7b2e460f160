// RUN: edgeq-opt %s --edgeq-conv-kernel | filecheck %s

// A requantized 1x1 stride-2 conv on the rows kernel beside a 3x3 stride-2 conv padded by 1 on the same input
// (ResNet's layer4 downsample and its block's first conv): the 3x3 conv's pack is a call of its own, before both,
// and the 1x1 conv reads phase plane (1, 1) of its result: 128 channels of 14 x 14 packed as 32 groups x 2 x 2
// planes of 10 rows x 8 columns, so its binding starts 3 planes in (3 x 80 pixels x 4 bytes) and its shape says
// 2 x 2 planes of 80 pixels, 8 wide. It has no pack of its own.
// CHECK:       hal.executable.source private @edgeq_kernels
// CHECK:         hal.executable.export public @conv_128x16x16_24x3x3_s2x2_d1x1 ordinal(0)
// CHECK:         hal.executable.export public @pack_conv_128x16x16_24x3x3_s2x2_d1x1_14x14_t1l1_v251 ordinal(1)
// CHECK:         hal.executable.export public @conv_128x14x14_64x1x1_s2x2_d1x1_rq39_0_255_m128_rows_reads_10x8_t1l1 ordinal(2)
// CHECK-NOT:     hal.executable.export
// CHECK:         func.func @conv_128x14x14_64x1x1_s2x2_d1x1_rq39_0_255_m128_rows_reads_10x8_t1l1()
// CHECK:           %[[AT:.*]] = arith.constant 960 : index
// CHECK:           hal.interface.binding.subspan {{.*}} binding(0) alignment(64) offset(%[[AT]]) flags(ReadOnly)
// CHECK:           call @edgeq_conv2d_u8s8_rows_requant_pooled(%{{.*}}, %c32_i32, %c64_i32, %c8_i32, %c1_i32, %c1_i32_{{[0-9]+}},
// CHECK-SAME:        %c2_i32, %c2_i32_{{[0-9]+}}, %c1_i32_{{[0-9]+}}, %c1_i32_{{[0-9]+}}, %c2_i32_{{[0-9]+}}, %c2_i32_{{[0-9]+}},
// CHECK-SAME:        %c8_i32_{{[0-9]+}}, %c80_i32, %c7_i32, %c7_i32_{{[0-9]+}},
// The weights, packed for each kernel: the grid kernel's 3x3 conv in blocks of 8 output channels, the rows
// kernel's 1x1 conv in blocks of 16 (one vector of its lanes per step).
// CHECK:       util.func private @edgeq_conv_128x16x16_24x3x3_s2x2_d1x1_14x14_t1l1_v251_packed(
// CHECK:         linalg.generic {{.*}} ins(%arg1 : tensor<24x128x3x3xi8>) outs(%{{.*}} : tensor<3x3x3x32x8x4xi8>)
// CHECK:       util.func private @edgeq_conv_128x14x14_64x1x1_s2x2_d1x1_14x14_t0l0_v0_rq39_0_255_m128_packed_reads_10x8_t1l1(
// CHECK:         linalg.generic {{.*}} ins(%arg1 : tensor<64x128x1x1xi8>) outs(%{{.*}} : tensor<4x1x1x32x16x4xi8>)
// CHECK-LABEL: util.func public @block
// CHECK:         %[[XK:.*]] = util.call @edgeq_pack_conv_128x16x16_24x3x3_s2x2_d1x1_14x14_t1l1_v251(%arg0)
// CHECK:         util.call @edgeq_conv_128x16x16_24x3x3_s2x2_d1x1_14x14_t1l1_v251_packed(%[[XK]],
// CHECK:         util.call @edgeq_conv_128x14x14_64x1x1_s2x2_d1x1_14x14_t0l0_v0_rq39_0_255_m128_packed_reads_10x8_t1l1(%[[XK]],
util.func public @block(%x: tensor<1x128x14x14xi8>, %w3: tensor<24x128x3x3xi8>, %w1: tensor<64x128x1x1xi8>, %a3: tensor<1x24x7x7xi32>, %b: tensor<64xi32>, %m: tensor<64x1x1xi32>) -> (tensor<1x24x7x7xi32>, tensor<1x64x7x7xi8>) {
  %pv = arith.constant -5 : i8
  %xp = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %pv : i8
  } : tensor<1x128x14x14xi8> to tensor<1x128x16x16xi8>
  %y3 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%xp, %w3 : tensor<1x128x16x16xi8>, tensor<24x128x3x3xi8>) outs(%a3 : tensor<1x24x7x7xi32>) -> tensor<1x24x7x7xi32>
  %e = tensor.empty() : tensor<1x64x7x7xi32>
  %bi = linalg.broadcast ins(%b : tensor<64xi32>) outs(%e : tensor<1x64x7x7xi32>) dimensions = [0, 2, 3]
  %y1 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w1 : tensor<1x128x14x14xi8>, tensor<64x128x1x1xi8>) outs(%bi : tensor<1x64x7x7xi32>) -> tensor<1x64x7x7xi32>
  %qe = tensor.empty() : tensor<1x64x7x7xi8>
  %q = linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (c, 0, 0)>, affine_map<(n, c, h, w) -> (n, c, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%y1, %m : tensor<1x64x7x7xi32>, tensor<64x1x1xi32>) outs(%qe : tensor<1x64x7x7xi8>) {
  ^bb0(%a: i32, %s: i32, %o: i8):
    %a64 = arith.extsi %a : i32 to i64
    %s64 = arith.extsi %s : i32 to i64
    %p = arith.muli %a64, %s64 : i64
    %round = arith.constant 274877906944 : i64
    %r = arith.addi %p, %round : i64
    %shift = arith.constant 39 : i64
    %t = arith.shrsi %r, %shift : i64
    %lo = arith.constant 0 : i64
    %c1 = arith.maxsi %t, %lo : i64
    %hi = arith.constant 255 : i64
    %c2 = arith.minsi %c1, %hi : i64
    %n32 = arith.trunci %c2 : i64 to i32
    %zp = arith.constant -128 : i32
    %sum = arith.addi %n32, %zp : i32
    %n8 = arith.trunci %sum : i32 to i8
    linalg.yield %n8 : i8
  } -> tensor<1x64x7x7xi8>
  util.return %y3, %q : tensor<1x24x7x7xi32>, tensor<1x64x7x7xi8>
}
