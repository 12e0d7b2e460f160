// RUN: edgeq-opt %s --edgeq-conv-kernel | filecheck %s
// RUN: edgeq-opt %s --edgeq-conv-kernel-avx2 | filecheck %s --check-prefix=AVX2

// A requantized stem (3 channels, 7x7 taps at stride 2, padded by 3 with -5) whose output rows are whole vectors
// (16 wide) runs on the patch kernel: one dispatch that reads the unpadded input, no pack. Its weights are the
// conv's flattened to the patch's 147 channels, padded to 148 and 8 output channels to 16, packed as
// [OC/8][C/4][8][4]; its scalars are the input's shape and padding, the taps and strides, the output's channels
// and size, the parts of the 16 vectors (4: at least 3 vectors each, an even count) and the 2 channel blocks each
// workgroup computes (all: the patch is unfolded once).
// CHECK:       hal.executable.source private @edgeq_kernels
// CHECK:         hal.executable.export public @conv_3x38x38_12x7x7_s2x2_d1x1_32x32_t3l3_v251_rq39_0_255_m128_patch
// CHECK-NOT:     hal.executable.export public @pack_
// CHECK:           call @edgeq_conv2d_u8s8_patch_requant_pooled(%0, %1, %2, %3, %4, %c3_i32, %c32_i32, %c32_i32_{{[0-9]+}},
// CHECK-SAME:        %c3_i32_{{[0-9]+}}, %c3_i32_{{[0-9]+}}, %c-5_i32, %c7_i32, %c7_i32_{{[0-9]+}}, %c2_i32, %c2_i32_{{[0-9]+}},
// CHECK-SAME:        %c12_i32, %c2_i32_{{[0-9]+}}, %c16_i32, %c16_i32_{{[0-9]+}}, %c4_i32, %c2_i32_{{[0-9]+}},
// CHECK-SAME:        %c39_i32, %c0_i32, %c255_i32, %c-128_i32
// CHECK-LABEL: util.func private @edgeq_conv_3x38x38_12x7x7_s2x2_d1x1_32x32_t3l3_v251_rq39_0_255_m128_patch(
// CHECK-SAME:      %[[X:.*]]: tensor<1x3x32x32xi8>, %[[W:.*]]: tensor<12x3x7x7xi8>,
// CHECK:         tensor.collapse_shape %[[W]] {{\[\[}}0], [1, 2, 3]] : tensor<12x3x7x7xi8> into tensor<12x147xi8>
// CHECK:         tensor.pad %{{.*}} low[0, 0] high[4, 1]
// CHECK:         flow.dispatch @edgeq_kernels::@conv_3x38x38_12x7x7_s2x2_d1x1_32x32_t3l3_v251_rq39_0_255_m128_patch(%[[X]], %{{.*}}) : (tensor<1x3x32x32xi8>, tensor<2x37x8x4xi8>, tensor<16xi32>, tensor<12x1x1xi32>) -> tensor<1x12x16x16xi8>
// CHECK-LABEL: util.func public @stem
// CHECK:         %[[Y:.*]] = util.call @edgeq_conv_3x38x38_12x7x7_s2x2_d1x1_32x32_t3l3_v251_rq39_0_255_m128_patch(%arg0,
// CHECK:         util.return %[[Y]]

// The AVX2 set runs it on the 1x1 kernel's tiles: the same entry and scalars, its weights widened to i16.
// AVX2:         func.func private @edgeq_conv2d_u8s8_patch_requant_pooled(memref<1xi8>, memref<1xi16>, memref<1xi32>, memref<1xi32>, memref<1xi8>,
// AVX2:           call @edgeq_conv2d_u8s8_patch_requant_pooled(%0, %1, %2, %3, %4, %c3_i32,
// AVX2:         arith.extsi %{{.*}} : i8 to i16
// AVX2:         flow.dispatch @edgeq_kernels::@conv_3x38x38_12x7x7_s2x2_d1x1_32x32_t3l3_v251_rq39_0_255_m128_patch(%{{.*}}) : (tensor<1x3x32x32xi8>, tensor<2x37x8x4xi16>, tensor<16xi32>, tensor<12x1x1xi32>) -> tensor<1x12x16x16xi8>
util.func public @stem(%x: tensor<1x3x32x32xi8>, %w: tensor<12x3x7x7xi8>, %b: tensor<12xi32>, %m: tensor<12x1x1xi32>) -> tensor<1x12x16x16xi8> {
  %pv = arith.constant -5 : i8
  %xp = tensor.pad %x low[0, 0, 3, 3] high[0, 0, 3, 3] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %pv : i8
  } : tensor<1x3x32x32xi8> to tensor<1x3x38x38xi8>
  %e = tensor.empty() : tensor<1x12x16x16xi32>
  %bi = linalg.broadcast ins(%b : tensor<12xi32>) outs(%e : tensor<1x12x16x16xi32>) dimensions = [0, 2, 3]
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%xp, %w : tensor<1x3x38x38xi8>, tensor<12x3x7x7xi8>) outs(%bi : tensor<1x12x16x16xi32>) -> tensor<1x12x16x16xi32>
  %qe = tensor.empty() : tensor<1x12x16x16xi8>
  %q = linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (c, 0, 0)>, affine_map<(n, c, h, w) -> (n, c, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%y, %m : tensor<1x12x16x16xi32>, tensor<12x1x1xi32>) outs(%qe : tensor<1x12x16x16xi8>) {
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
  } -> tensor<1x12x16x16xi8>
  util.return %q : tensor<1x12x16x16xi8>
}
