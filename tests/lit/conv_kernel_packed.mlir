// RUN: edgeq-opt %s --edgeq-conv-kernel | filecheck %s

// A 3x3 depthwise conv whose requantized output only feeds a 1x1 conv (stride 1, no padding), as in MobileNet:
// the depthwise kernel writes the 1x1 conv's packed input (groups of 4 channels, 6 -> 2 groups), and the 1x1 conv
// runs without a pack dispatch of its own.
// CHECK:       hal.executable.source private @edgeq_kernels
// CHECK-NOT:     hal.executable.export public @pack_
// CHECK:         hal.executable.export public @dw_6x10x10_3x3_s1x1_8x8_t1l1_v128_rq39_0_255_m128_packed
// CHECK-NOT:     hal.executable.export public @pack_
// CHECK-LABEL: util.func private @edgeq_conv_6x8x8_16x1x1_s1x1_d1x1_8x8_t0l0_v0_packed(
// CHECK-SAME:      %[[X:.*]]: tensor<2x1x1x8x8x4xi8>
// CHECK-NOT:     flow.dispatch @edgeq_kernels::@pack_
// CHECK:         flow.dispatch @edgeq_kernels::@conv_6x8x8_16x1x1_s1x1_d1x1(%[[X]],
// CHECK-LABEL: util.func private @edgeq_dw_6x10x10_3x3_s1x1_8x8_t1l1_v128_rq39_0_255_m128_packed(
// CHECK:         flow.dispatch @edgeq_kernels::@dw_6x10x10_3x3_s1x1_8x8_t1l1_v128_rq39_0_255_m128_packed({{.*}}) : {{.*}} -> tensor<2x1x1x8x8x4xi8>
// CHECK-LABEL: util.func public @depthwise_then_1x1
// CHECK:         %[[P:.*]] = util.call @edgeq_dw_6x10x10_3x3_s1x1_8x8_t1l1_v128_rq39_0_255_m128_packed(
// CHECK-SAME:      -> tensor<2x1x1x8x8x4xi8>
// CHECK:         util.call @edgeq_conv_6x8x8_16x1x1_s1x1_d1x1_8x8_t0l0_v0_packed(%[[P]],
util.func public @depthwise_then_1x1(%x: tensor<1x6x8x8xi8>, %w: tensor<6x3x3xi8>, %b: tensor<6xi32>, %m: tensor<6x1x1xi32>, %w1: tensor<16x6x1x1xi8>, %acc: tensor<1x16x8x8xi32>) -> tensor<1x16x8x8xi32> {
  %c-128 = arith.constant -128 : i8
  %xp = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %c-128 : i8
  } : tensor<1x6x8x8xi8> to tensor<1x6x10x10xi8>
  %e = tensor.empty() : tensor<1x6x8x8xi32>
  %bi = linalg.broadcast ins(%b : tensor<6xi32>) outs(%e : tensor<1x6x8x8xi32>) dimensions = [0, 2, 3]
  %y = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>} ins(%xp, %w : tensor<1x6x10x10xi8>, tensor<6x3x3xi8>) outs(%bi : tensor<1x6x8x8xi32>) -> tensor<1x6x8x8xi32>
  %qe = tensor.empty() : tensor<1x6x8x8xi8>
  %q = linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (c, 0, 0)>, affine_map<(n, c, h, w) -> (n, c, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%y, %m : tensor<1x6x8x8xi32>, tensor<6x1x1xi32>) outs(%qe : tensor<1x6x8x8xi8>) {
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
  } -> tensor<1x6x8x8xi8>
  %z = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%q, %w1 : tensor<1x6x8x8xi8>, tensor<16x6x1x1xi8>) outs(%acc : tensor<1x16x8x8xi32>) -> tensor<1x16x8x8xi32>
  util.return %z : tensor<1x16x8x8xi32>
}
