// RUN: edgeq-opt %s --edgeq-conv-kernel-avx2 | filecheck %s

// With the AVX2 set, a requantized 1x1 stride-1 conv on its unpadded input (33 -> 40 channels on 7x7) runs on the
// 1x1 kernel, which reads the input NCHW: no pack. Its weights are widened to i16 in [OC/8][1][1][C/4][8][4]; its scalars
// are the channels, the 49 pixels, 7 parts of the 7 vectors of 8 pixels, the 5 blocks of 8 channels each workgroup
// computes (one group: each workgroup interleaves its pixels' input once for all of them), then the
// requantization's. Its second result is the scratch: per workgroup, a strip of 24 pixels' input in 17 pairs of
// channels, 17 x 24 x 2 x 2 bytes, 7 x 1632 in all.
// CHECK:       hal.executable.source private @edgeq_kernels
// CHECK:         hal.executable.export public @conv_33x7x7_40x1x1_s1x1_d1x1_rq39_0_255_m128_pw
// CHECK:           hal.return %[[ONE:.*]], %[[ONE]], %[[ONE]] : index, index, index
// CHECK-NOT:     hal.executable.export public @pack_
// CHECK:         func.func private @edgeq_conv1x1_u8s8_requant_pooled(memref<1xi8>, memref<1xi16>, memref<1xi32>, memref<1xi32>, memref<1xi8>, memref<1xi8>, i32, i32, i32, i32, i32, i32, i32, i32, i32, index, index, index)
// CHECK-DAG:       %[[GX:.*]] = arith.constant 1 : index
// CHECK-DAG:       %[[GY:.*]] = arith.constant 7 : index
// CHECK:           call @edgeq_conv1x1_u8s8_requant_pooled(%0, %1, %2, %3, %4, %5, %c33_i32, %c40_i32, %c49_i32, %c7_i32, %c5_i32, %c39_i32, %c0_i32, %c255_i32, %c-128_i32, %[[GX]], %[[GY]], %{{.*}})
// CHECK-LABEL: util.func private @edgeq_conv_33x7x7_40x1x1_s1x1_d1x1_7x7_t0l0_v0_rq39_0_255_m128(
// CHECK:         arith.extsi %{{.*}} : i8 to i16
// CHECK:         %[[Y:.*]]:2 = flow.dispatch @edgeq_kernels::@conv_33x7x7_40x1x1_s1x1_d1x1_rq39_0_255_m128_pw(%arg0, %{{.*}}) : (tensor<1x33x7x7xi8>, tensor<5x1x1x9x8x4xi16>, tensor<40xi32>, tensor<40x1x1xi32>) -> (tensor<1x40x7x7xi8>, tensor<11424xi8>)
// CHECK:         util.return %[[Y]]#0 : tensor<1x40x7x7xi8>
// CHECK-LABEL: util.func public @pointwise
// CHECK-NOT:     linalg.conv_2d_nchw_fchw
// CHECK:         %[[Q:.*]] = util.call @edgeq_conv_33x7x7_40x1x1_s1x1_d1x1_7x7_t0l0_v0_rq39_0_255_m128(%arg0,
// CHECK:         util.return %[[Q]]
util.func public @pointwise(%x: tensor<1x33x7x7xi8>, %w: tensor<40x33x1x1xi8>, %b: tensor<40xi32>, %m: tensor<40x1x1xi32>) -> tensor<1x40x7x7xi8> {
  %e = tensor.empty() : tensor<1x40x7x7xi32>
  %bi = linalg.broadcast ins(%b : tensor<40xi32>) outs(%e : tensor<1x40x7x7xi32>) dimensions = [0, 2, 3]
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x33x7x7xi8>, tensor<40x33x1x1xi8>) outs(%bi : tensor<1x40x7x7xi32>) -> tensor<1x40x7x7xi32>
  %qe = tensor.empty() : tensor<1x40x7x7xi8>
  %q = linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (c, 0, 0)>, affine_map<(n, c, h, w) -> (n, c, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%y, %m : tensor<1x40x7x7xi32>, tensor<40x1x1xi32>) outs(%qe : tensor<1x40x7x7xi8>) {
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
  } -> tensor<1x40x7x7xi8>
  util.return %q : tensor<1x40x7x7xi8>
}
