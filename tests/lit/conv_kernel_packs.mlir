// RUN: edgeq-opt %s --edgeq-conv-kernel | filecheck %s

// A requantized conv on the grid kernel whose output a 1x1 conv (stride 1, no padding) reads, and which is also
// used elsewhere (here returned), as MobileNet's project convs feed the next expand conv and residual add: the
// kernel writes the i8 output NCHW and, as a second result, the 1x1 conv's packed input (16 channels -> 4 groups),
// through a second writable binding; the 1x1 conv runs without a pack dispatch of its own.
// CHECK:       hal.executable.source private @edgeq_kernels
// CHECK:         hal.executable.export public @conv_8x8x8_16x1x1_s1x1_d1x1_rq39_0_255_m128_packs_8x8_t0l0_s1x1_v0
// CHECK-NOT:     hal.executable.export public @pack_conv_16x8x8
// CHECK:           binding(4) alignment(64) offset(%c0) : memref<1xi8>
// CHECK-NEXT:      binding(5) alignment(64) offset(%c0) : memref<1xi8>
// CHECK:           call @edgeq_conv2d_u8s8_requant_packs_pooled(%0, %1, %2, %3, %4, %5,
// CHECK-LABEL: util.func private @edgeq_conv_8x8x8_16x1x1_s1x1_d1x1_8x8_t0l0_v0_rq39_0_255_m128_packs_8x8_t0l0_s1x1_v0(
// CHECK-SAME:      -> (tensor<1x16x8x8xi8>, tensor<4x1x1x8x8x4xi8>)
// CHECK:         flow.dispatch @edgeq_kernels::@conv_8x8x8_16x1x1_s1x1_d1x1_rq39_0_255_m128_packs_8x8_t0l0_s1x1_v0({{.*}} -> (tensor<1x16x8x8xi8>, tensor<4x1x1x8x8x4xi8>)
// CHECK-LABEL: util.func private @edgeq_conv_16x8x8_24x1x1_s1x1_d1x1_8x8_t0l0_v0_packed(
// CHECK-NOT:     flow.dispatch @edgeq_kernels::@pack_
// CHECK:         flow.dispatch @edgeq_kernels::@conv_16x8x8_24x1x1_s1x1_d1x1(
// CHECK-LABEL: util.func public @conv_then_1x1
// CHECK:         %[[Y:.*]]:2 = util.call @edgeq_conv_8x8x8_16x1x1_s1x1_d1x1_8x8_t0l0_v0_rq39_0_255_m128_packs_8x8_t0l0_s1x1_v0(
// CHECK:         %[[Z:.*]] = util.call @edgeq_conv_16x8x8_24x1x1_s1x1_d1x1_8x8_t0l0_v0_packed(%[[Y]]#1,
// CHECK:         util.return %[[Y]]#0, %[[Z]]
util.func public @conv_then_1x1(%x: tensor<1x8x8x8xi8>, %w: tensor<16x8x1x1xi8>, %b: tensor<16xi32>, %m: tensor<16x1x1xi32>, %w1: tensor<24x16x1x1xi8>, %acc: tensor<1x24x8x8xi32>) -> (tensor<1x16x8x8xi8>, tensor<1x24x8x8xi32>) {
  %e = tensor.empty() : tensor<1x16x8x8xi32>
  %bi = linalg.broadcast ins(%b : tensor<16xi32>) outs(%e : tensor<1x16x8x8xi32>) dimensions = [0, 2, 3]
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x8x8x8xi8>, tensor<16x8x1x1xi8>) outs(%bi : tensor<1x16x8x8xi32>) -> tensor<1x16x8x8xi32>
  %qe = tensor.empty() : tensor<1x16x8x8xi8>
  %q = linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (c, 0, 0)>, affine_map<(n, c, h, w) -> (n, c, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%y, %m : tensor<1x16x8x8xi32>, tensor<16x1x1xi32>) outs(%qe : tensor<1x16x8x8xi8>) {
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
  } -> tensor<1x16x8x8xi8>
  %z = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%q, %w1 : tensor<1x16x8x8xi8>, tensor<24x16x1x1xi8>) outs(%acc : tensor<1x24x8x8xi32>) -> tensor<1x24x8x8xi32>
  util.return %q, %z : tensor<1x16x8x8xi8>, tensor<1x24x8x8xi32>
}
