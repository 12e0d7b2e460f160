// RUN: edgeq-opt %s --edgeq-conv-kernel | filecheck %s

// A requantized conv on the rows kernel (sums of 32 x 9) whose output a 3x3 conv padded by 1 reads, as ResNet's
// layer3 and layer4 pairs: the kernel writes that conv's packed input, its padding (value -128, 128 as u8) and
// rows included, as a second result; its export's name says the layout (9 rows of 8, padded at top 1 and left 1,
// stride 1) and it takes the layout's 10 scalars after the requantization's. The reader has no pack dispatch.
// CHECK:       hal.executable.source private @edgeq_kernels
// CHECK:         hal.executable.export public @conv_32x8x8_32x3x3_s1x1_d1x1_rq39_0_255_m128_rows_packs_9x8_t1l1_s1x1_v128
// CHECK-NOT:     hal.executable.export public @pack_conv_32x8x8_24x3x3
// CHECK:           call @edgeq_conv2d_u8s8_rows_requant_packs_pooled(%0, %1, %2, %3, %4, %5,
// CHECK-SAME:        %c39_i32, %c0_i32, %c255_i32, %c-128_i32, %c72_i32_{{[0-9]+}}, %c8_i32_{{[0-9]+}}, %c9_i32, %c1_i32
// CHECK-LABEL: util.func private @edgeq_conv_32x8x8_32x3x3_s1x1_d1x1_6x6_t1l1_v128_rq39_0_255_m128_packs_9x8_t1l1_s1x1_v128(
// CHECK-SAME:      -> (tensor<1x32x6x6xi8>, tensor<8x1x1x9x8x4xi8>)
// CHECK-LABEL: util.func private @edgeq_conv_32x8x8_24x3x3_s1x1_d1x1_6x6_t1l1_v128_packed(
// CHECK-NOT:     flow.dispatch @edgeq_kernels::@pack_
// CHECK-LABEL: util.func public @conv_then_3x3
// CHECK:         %[[Y:.*]]:2 = util.call @edgeq_conv_32x8x8_32x3x3_s1x1_d1x1_6x6_t1l1_v128_rq39_0_255_m128_packs_9x8_t1l1_s1x1_v128(
// CHECK:         %[[Z:.*]] = util.call @edgeq_conv_32x8x8_24x3x3_s1x1_d1x1_6x6_t1l1_v128_packed(%[[Y]]#1,
// CHECK:         util.return %[[Y]]#0, %[[Z]]
util.func public @conv_then_3x3(%x: tensor<1x32x6x6xi8>, %w: tensor<32x32x3x3xi8>, %b: tensor<32xi32>, %m: tensor<32x1x1xi32>, %w1: tensor<24x32x3x3xi8>, %acc: tensor<1x24x6x6xi32>) -> (tensor<1x32x6x6xi8>, tensor<1x24x6x6xi32>) {
  %pv = arith.constant -128 : i8
  %xp = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %pv : i8
  } : tensor<1x32x6x6xi8> to tensor<1x32x8x8xi8>
  %e = tensor.empty() : tensor<1x32x6x6xi32>
  %bi = linalg.broadcast ins(%b : tensor<32xi32>) outs(%e : tensor<1x32x6x6xi32>) dimensions = [0, 2, 3]
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%xp, %w : tensor<1x32x8x8xi8>, tensor<32x32x3x3xi8>) outs(%bi : tensor<1x32x6x6xi32>) -> tensor<1x32x6x6xi32>
  %qe = tensor.empty() : tensor<1x32x6x6xi8>
  %q = linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (c, 0, 0)>, affine_map<(n, c, h, w) -> (n, c, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%y, %m : tensor<1x32x6x6xi32>, tensor<32x1x1xi32>) outs(%qe : tensor<1x32x6x6xi8>) {
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
  } -> tensor<1x32x6x6xi8>
  %qp = tensor.pad %q low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %pv : i8
  } : tensor<1x32x6x6xi8> to tensor<1x32x8x8xi8>
  %z = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%qp, %w1 : tensor<1x32x8x8xi8>, tensor<24x32x3x3xi8>) outs(%acc : tensor<1x24x6x6xi32>) -> tensor<1x24x6x6xi32>
  util.return %q, %z : tensor<1x32x6x6xi8>, tensor<1x24x6x6xi32>
}
