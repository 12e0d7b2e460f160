// RUN: edgeq-opt %s --edgeq-conv-kernel | filecheck %s
// RUN: edgeq-opt %s --edgeq-conv-kernel-avx2 | filecheck %s --check-prefix=AVX2

// A requantized 3x3 stride-1 conv padded by 1 with 16 -> 64 channels becomes one dispatch of the Winograd kernel
// (winograd_fits), which reads the input unpadded: 8x8 outputs are 4 tiles of 4x4, in 2 workgroups of 2 tiles. Two
// workgroups claim their pieces from both ends of the tiles (winograd_claims), counted in a global that the dispatch
// updates in place. 4x4 outputs, one tile, make one workgroup, which takes its own range (@winograd_static).
// CHECK:       #[[W:.*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0 * 64 + d4, d3 * 2 + d5, d6, d7)>
// CHECK-NEXT:  #[[G:.*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d1, d2, d6, d7)>
// CHECK-NEXT:  #[[U:.*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d2, d3, d4, d5)>
// CHECK:       hal.executable.source private @edgeq_kernels
// CHECK:         hal.executable.export public @winograd_16x8x8_64_v128_rq39_0_255_m128 ordinal(0)
// CHECK:           hal.return %[[ONE:.*]], %[[ONE]], %[[ONE]] : index, index, index
// CHECK:         hal.executable.export public @winograd_16x4x4_64_v128_rq39_0_255_m128 ordinal(1)
// CHECK-NOT:     hal.executable.export
// CHECK:         func.func private @edgeq_winograd_conv_requant_claimed_pooled(memref<1xi8>, memref<1xi16>, memref<1xi32>, memref<1xi32>, memref<1xi64>, memref<1xi8>, memref<1xi8>, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, index, index, index)
// CHECK:         func.func private @edgeq_winograd_conv_requant_pooled(memref<1xi8>, memref<1xi16>, memref<1xi32>, memref<1xi32>, memref<1xi8>, memref<1xi8>, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, index, index, index)
// The scalars: 16 -> 64 channels, 8x8 (4x4), padding value -128, 2 parts of the tiles (1), 1 of the output
// channels, then the requantization's.
// CHECK-DAG:       %[[GX:.*]] = arith.constant 1 : index
// CHECK-DAG:       %[[GY:.*]] = arith.constant 2 : index
// CHECK:           call @edgeq_winograd_conv_requant_claimed_pooled(%0, %1, %2, %3, %4, %5, %6, %c16_i32, %c64_i32, %c8_i32, %c8_i32_0, %c-128_i32, %c2_i32, %c1_i32, %c39_i32, %c0_i32, %c255_i32, %c-128_i32_1, %[[GX]], %[[GY]], %{{.*}})
// CHECK:           call @edgeq_winograd_conv_requant_pooled(%0, %1, %2, %3, %4, %5, %c16_i32, %c64_i32, %c4_i32, %c4_i32_0, %c-128_i32, %c1_i32, %c1_i32_1, %c39_i32, %c0_i32, %c255_i32, %c-128_i32_2, %{{.*}}, %{{.*}}, %{{.*}})
// The filters' transform G' g G'^T summed in i16 into [OC/64][6][6][C/2][64][2]; the dispatch's second result is
// its scratch: per workgroup, V (36 x 16 channels x 2 tiles x 2 bytes) and M (36 x 6 tiles x 64 channels x 4 bytes).
// CHECK:       util.global private mutable @[[CLAIMS:edgeq_conv_16x10x10_64x3x3_s1x1_d1x1_8x8_t1l1_v128_rq39_0_255_m128_winograd_claims]] = dense<0> : tensor<2xi64>
// CHECK-LABEL: util.func private @edgeq_conv_16x10x10_64x3x3_s1x1_d1x1_8x8_t1l1_v128_rq39_0_255_m128_winograd(
// CHECK-SAME:      %[[X:.*]]: tensor<1x16x8x8xi8>, %[[WT:.*]]: tensor<64x16x3x3xi8>
// CHECK:         %[[GG:.*]] = tensor.expand_shape %{{.*}} output_shape [6, 6, 3, 3] : tensor<324xi16> into tensor<6x6x3x3xi16>
// CHECK:         %[[UT:.*]] = linalg.generic {indexing_maps = [#[[W]], #[[G]], #[[U]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]} ins(%[[WT]], %[[GG]] : tensor<64x16x3x3xi8>, tensor<6x6x3x3xi16>) outs(%{{.*}} : tensor<1x6x6x8x64x2xi16>)
// CHECK:           arith.extsi %{{.*}} : i8 to i16
// CHECK:           arith.muli %{{.*}} : i16
// CHECK:         %[[C:.*]] = util.global.load @[[CLAIMS]] : tensor<2xi64>
// CHECK:         %[[D:.*]]:3 = flow.dispatch @edgeq_kernels::@winograd_16x8x8_64_v128_rq39_0_255_m128(%[[X]], %[[UT]], %{{.*}}, %{{.*}}, %[[C]]) : (tensor<1x16x8x8xi8>, tensor<1x6x6x8x64x2xi16>, tensor<64xi32>, tensor<64x1x1xi32>, tensor<2xi64>) -> (tensor<1x64x8x8xi8>, tensor<115200xi8>, %[[C]])
// CHECK-NEXT:    util.global.store %[[D]]#2, @[[CLAIMS]] : tensor<2xi64>
// CHECK-LABEL: util.func private @edgeq_conv_16x6x6_64x3x3_s1x1_d1x1_4x4_t1l1_v128_rq39_0_255_m128_winograd(
// CHECK-NOT:     util.global
// CHECK:         flow.dispatch @edgeq_kernels::@winograd_16x4x4_64_v128_rq39_0_255_m128(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (tensor<1x16x4x4xi8>, tensor<1x6x6x8x64x2xi16>, tensor<64xi32>, tensor<64x1x1xi32>) -> (tensor<1x64x4x4xi8>, tensor<56448xi8>)
// CHECK-LABEL: util.func public @winograd
// CHECK-NOT:     linalg.conv_2d_nchw_fchw
// CHECK:         util.call @edgeq_conv_16x10x10_64x3x3_s1x1_d1x1_8x8_t1l1_v128_rq39_0_255_m128_winograd(%arg0,

// The AVX2 kernel: the transform in groups of 16 output channels, [OC/16][6][6][C/2][16][2]; the 4 tiles make one
// piece, so the 2 workgroups split the output channels (1 part of the tiles, 2 of the channels); its scratch per
// workgroup: V (36 x 16 channels x 4 tiles x 2 bytes) and M and the chunks' sums (4 tiles x 16 channels x
// (36 + 16) x 4 bytes).
// AVX2:       #[[W:.*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0 * 16 + d4, d3 * 2 + d5, d6, d7)>
// AVX2:         hal.executable.export public @winograd_16x8x8_64_v128_rq39_0_255_m128 ordinal(0)
// AVX2:           hal.return %[[ONE:.*]], %[[ONE]], %[[ONE]] : index, index, index
// AVX2:         func.func @winograd_16x8x8_64_v128_rq39_0_255_m128()
// AVX2-DAG:       %[[GX:.*]] = arith.constant 2 : index
// AVX2-DAG:       %[[GY:.*]] = arith.constant 1 : index
// AVX2:           call @edgeq_winograd_conv_requant_pooled(%0, %1, %2, %3, %4, %5, %c16_i32, %c64_i32, %c8_i32, %c8_i32_0, %c-128_i32, %c1_i32, %c2_i32, %c39_i32, %c0_i32, %c255_i32, %c-128_i32_1, %[[GX]], %[[GY]], %{{.*}})
// AVX2:         outs(%{{.*}} : tensor<4x6x6x8x16x2xi16>)
// AVX2:         flow.dispatch @edgeq_kernels::@winograd_16x8x8_64_v128_rq39_0_255_m128({{.*}}) -> (tensor<1x64x8x8xi8>, tensor<35840xi8>)
util.func public @winograd(%x: tensor<1x16x8x8xi8>, %w: tensor<64x16x3x3xi8>, %b: tensor<64xi32>, %m: tensor<64x1x1xi32>) -> tensor<1x64x8x8xi8> {
  %pad = arith.constant -128 : i8
  %xp = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %pad : i8
  } : tensor<1x16x8x8xi8> to tensor<1x16x10x10xi8>
  %e = tensor.empty() : tensor<1x64x8x8xi32>
  %bi = linalg.broadcast ins(%b : tensor<64xi32>) outs(%e : tensor<1x64x8x8xi32>) dimensions = [0, 2, 3]
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%xp, %w : tensor<1x16x10x10xi8>, tensor<64x16x3x3xi8>) outs(%bi : tensor<1x64x8x8xi32>) -> tensor<1x64x8x8xi32>
  %qe = tensor.empty() : tensor<1x64x8x8xi8>
  %q = linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (c, 0, 0)>, affine_map<(n, c, h, w) -> (n, c, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%y, %m : tensor<1x64x8x8xi32>, tensor<64x1x1xi32>) outs(%qe : tensor<1x64x8x8xi8>) {
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
  } -> tensor<1x64x8x8xi8>
  util.return %q : tensor<1x64x8x8xi8>
}

util.func public @winograd_static(%x: tensor<1x16x4x4xi8>, %w: tensor<64x16x3x3xi8>, %b: tensor<64xi32>, %m: tensor<64x1x1xi32>) -> tensor<1x64x4x4xi8> {
  %pad = arith.constant -128 : i8
  %xp = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %pad : i8
  } : tensor<1x16x4x4xi8> to tensor<1x16x6x6xi8>
  %e = tensor.empty() : tensor<1x64x4x4xi32>
  %bi = linalg.broadcast ins(%b : tensor<64xi32>) outs(%e : tensor<1x64x4x4xi32>) dimensions = [0, 2, 3]
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%xp, %w : tensor<1x16x6x6xi8>, tensor<64x16x3x3xi8>) outs(%bi : tensor<1x64x4x4xi32>) -> tensor<1x64x4x4xi32>
  %qe = tensor.empty() : tensor<1x64x4x4xi8>
  %q = linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (c, 0, 0)>, affine_map<(n, c, h, w) -> (n, c, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%y, %m : tensor<1x64x4x4xi32>, tensor<64x1x1xi32>) outs(%qe : tensor<1x64x4x4xi8>) {
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
  } -> tensor<1x64x4x4xi8>
  util.return %q : tensor<1x64x4x4xi8>
}
