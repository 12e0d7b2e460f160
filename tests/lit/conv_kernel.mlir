// RUN: edgeq-opt %s --edgeq-conv-kernel | filecheck %s
// RUN: edgeq-opt %s --edgeq-conv-kernel | filecheck %s --check-prefix=UNFOLD

// One executable links the kernels: a conv export per conv shape (workgroups: 64 output channels x 48 grid
// pixels), a pack export per conv and input padding (workgroups: 4 channels x phase planes), a depthwise export,
// each one workgroup whose shim passes the shape and the grid to the C function's pool glue.
// CHECK:       hal.executable.source private @edgeq_kernels <objects = <{#{{.*}} = [#hal.executable.object<{path = "{{.*}}/kernels/conv2d_u8s8_avx512vnni-{{[0-9a-f]+}}.o"}>, #hal.executable.object<{path = "{{.*}}/kernels/pool_glue-{{[0-9a-f]+}}.o"}>]}>>
// CHECK:         hal.executable.export public @conv_11x10x10_24x3x3_s2x2_d1x1 ordinal(0)
// CHECK:         hal.executable.export public @pack_conv_11x10x10_24x3x3_s2x2_d1x1_8x8_t1l1_v128 ordinal(1)
// CHECK:           hal.return %[[ONE:.*]], %[[ONE]], %[[ONE]] : index, index, index
// CHECK:         hal.executable.export public @conv_16x6x6_32x1x1_s1x1_d1x1_rq39_0_255_m128 ordinal(2)
// CHECK:         hal.executable.export public @pack_conv_16x6x6_32x1x1_s1x1_d1x1_6x6_t0l0_v0 ordinal(3)
// CHECK:         hal.executable.export public @conv_9x10x4_8x3x1_s2x1_d1x1_u3 ordinal(4)
// CHECK:         hal.executable.export public @pack_conv_9x10x4_8x3x1_s2x1_d1x1_u3_8x8_t1l1_v128 ordinal(5)
// CHECK:         hal.executable.export public @dw_8x10x10_3x3_s2x2_8x8_t1l1_v128_rq39_0_255_m128 ordinal(6)
// CHECK-NOT:     hal.executable.export
// CHECK-DAG:     func.func private @edgeq_conv2d_u8s8_pooled({{.*}}) attributes {hal.import.static, llvm.bareptr = true}
// CHECK-DAG:     func.func private @edgeq_conv2d_u8s8_requant_pooled({{.*}}) attributes {hal.import.static, llvm.bareptr = true}
// CHECK-DAG:     func.func private @edgeq_pack_u8_pooled({{.*}}) attributes {hal.import.static, llvm.bareptr = true}
// CHECK-DAG:     func.func private @edgeq_dwconv3x3_u8s8_requant_pooled({{.*}}) attributes {hal.import.static, llvm.bareptr = true}
// CHECK:         func.func @conv_11x10x10_24x3x3_s2x2_d1x1()
// CHECK:           call @edgeq_conv2d_u8s8_pooled(
// The pack's scalars: 11 channels of 8 x 8, padded by 1 row and column with -128; stride 2 in 2 x 2 phase planes
// of 8 rows x 5 columns; 2 parts of the 3 channel groups; no unfolding (11 channels x 3 taps are too many).
// CHECK:         func.func @pack_conv_11x10x10_24x3x3_s2x2_d1x1_8x8_t1l1_v128()
// CHECK-DAG:       %[[GX:.*]] = arith.constant 2 : index
// CHECK-DAG:       %[[GY:.*]] = arith.constant 4 : index
// CHECK:           %[[POOL:.*]] = call @edgeq_pool() : () -> index
// CHECK:           call @edgeq_pack_u8_pooled(%{{.*}}, %{{.*}}, %c11_i32, %c8_i32, %c8_i32_0, %c1_i32, %c1_i32_1, %c-128_i32, %c2_i32, %c2_i32_2, %c2_i32_3, %c2_i32_4, %c8_i32_5, %c5_i32, %c2_i32_6, %c1_i32_7,
// CHECK-SAME:        %[[GX]], %[[GY]], %[[POOL]])

// The pack reads the padding's source, the weights are padded 11 -> 12 input channels (zeros) and packed 8 output
// channels x 4 inputs, the sums start at -128 * sum(w), and the conv's init (its bias) is added after.
// CHECK-LABEL: util.func private @edgeq_conv_11x10x10_24x3x3_s2x2_d1x1_8x8_t1l1_v128(
// CHECK-SAME:      %[[XS:.*]]: tensor<1x11x8x8xi8>, %{{.*}}: tensor<24x11x3x3xi8>, %[[INIT:.*]]: tensor<1x24x4x4xi32>)
// CHECK:         %[[WP:.*]] = tensor.pad %{{.*}} low[0, 0, 0, 0] high[0, 1, 0, 0]
// CHECK:         %[[X:.*]] = flow.dispatch @edgeq_kernels::@pack_conv_11x10x10_24x3x3_s2x2_d1x1_8x8_t1l1_v128(%[[XS]]) : (tensor<1x11x8x8xi8>) -> tensor<3x2x2x8x5x4xi8>
// CHECK:         %[[W:.*]] = linalg.generic {{.*}} ins(%[[WP]] : tensor<24x12x3x3xi8>) outs(%{{.*}} : tensor<3x3x3x3x8x4xi8>)
// CHECK:         %[[B:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction", "reduction", "reduction"]{{.*}} ins(%[[WP]]
// CHECK:           arith.muli %{{.*}}, %c-128_i32 : i32
// CHECK:         %[[Y:.*]] = flow.dispatch @edgeq_kernels::@conv_11x10x10_24x3x3_s2x2_d1x1(%[[X]], %[[W]], %[[B]]) : {{.*}} -> tensor<1x24x4x4xi32>
// CHECK:         linalg.generic {{.*}} ins(%[[Y]] : tensor<1x24x4x4xi32>) outs(%[[INIT]] : tensor<1x24x4x4xi32>)
// CHECK:           arith.addi %in, %out : i32

// The requantization fused: the bias starts the sums, the multipliers go to the kernel, i8 comes out.
// CHECK-LABEL: util.func private @edgeq_conv_16x6x6_32x1x1_s1x1_d1x1_6x6_t0l0_v0_rq39_0_255_m128(
// CHECK-SAME:      %{{.*}}: tensor<1x16x6x6xi8>, %{{.*}}: tensor<32x16x1x1xi8>, %[[BIAS:.*]]: tensor<32xi32>, %[[M:.*]]: tensor<32x1x1xi32>) -> tensor<1x32x6x6xi8>
// CHECK:         %[[S:.*]] = linalg.generic {{.*}} outs(%[[BIAS]] : tensor<32xi32>)
// CHECK:         flow.dispatch @edgeq_kernels::@conv_16x6x6_32x1x1_s1x1_d1x1_rq39_0_255_m128(%{{.*}}, %{{.*}}, %[[S]], %[[M]]) : {{.*}} -> tensor<1x32x6x6xi8>

// A 3x3 depthwise conv with its requantization becomes one call: each row of taps padded to 4, their sums started
// at bias - 128 * sum(w), the pad's source read directly. Without a requantization to fuse, a depthwise conv stays
// (edgeq-depthwise-taps takes it).
// CHECK-LABEL: util.func private @edgeq_dw_8x10x10_3x3_s2x2_8x8_t1l1_v128_rq39_0_255_m128(
// CHECK-SAME:      %[[X:.*]]: tensor<1x8x8x8xi8>, %[[W:.*]]: tensor<8x3x3xi8>, %[[BIAS:.*]]: tensor<8xi32>, %[[M:.*]]: tensor<8x1x1xi32>) -> tensor<1x8x4x4xi8>
// CHECK:         %[[WK:.*]] = tensor.pad %[[W]] low[0, 0, 0] high[0, 0, 1]
// CHECK:         } : tensor<8x3x3xi8> to tensor<8x3x4xi8>
// CHECK:         %[[S:.*]] = linalg.generic {{.*}} ins(%[[W]] : tensor<8x3x3xi8>) outs(%[[BIAS]] : tensor<8xi32>)
// CHECK:         flow.dispatch @edgeq_kernels::@dw_8x10x10_3x3_s2x2_8x8_t1l1_v128_rq39_0_255_m128(%[[X]], %[[WK]], %[[S]], %[[M]])

// Two convs of one shape and padding share one function.
// CHECK-LABEL: util.func public @two_convs
// CHECK-NOT:     linalg.conv_2d_nchw_fchw
// CHECK:         util.call @edgeq_conv_11x10x10_24x3x3_s2x2_d1x1_8x8_t1l1_v128(%arg0, %arg1, %arg2)
// CHECK:         util.call @edgeq_conv_11x10x10_24x3x3_s2x2_d1x1_8x8_t1l1_v128(%arg0, %arg1, %arg2)
util.func public @two_convs(%x: tensor<1x11x8x8xi8>, %w: tensor<24x11x3x3xi8>, %acc: tensor<1x24x4x4xi32>) -> (tensor<1x24x4x4xi32>, tensor<1x24x4x4xi32>) {
  %c-128 = arith.constant -128 : i8
  %xp = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %c-128 : i8
  } : tensor<1x11x8x8xi8> to tensor<1x11x10x10xi8>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%xp, %w : tensor<1x11x10x10xi8>, tensor<24x11x3x3xi8>) outs(%acc : tensor<1x24x4x4xi32>) -> tensor<1x24x4x4xi32>
  %z = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%xp, %w : tensor<1x11x10x10xi8>, tensor<24x11x3x3xi8>) outs(%acc : tensor<1x24x4x4xi32>) -> tensor<1x24x4x4xi32>
  util.return %y, %z : tensor<1x24x4x4xi32>, tensor<1x24x4x4xi32>
}

// A 1x1 conv from a broadcast bias into edgeq's requantization (edgeq-lower-requant's form) becomes one call.
// CHECK-LABEL: util.func public @requantized
// CHECK-NOT:     linalg.generic
// CHECK:         %[[Q:.*]] = util.call @edgeq_conv_16x6x6_32x1x1_s1x1_d1x1_6x6_t0l0_v0_rq39_0_255_m128(%arg0, %arg1, %arg2, %arg3)
// CHECK-NEXT:    util.return %[[Q]] : tensor<1x32x6x6xi8>
util.func public @requantized(%x: tensor<1x16x6x6xi8>, %w: tensor<32x16x1x1xi8>, %b: tensor<32xi32>, %m: tensor<32x1x1xi32>) -> tensor<1x32x6x6xi8> {
  %e = tensor.empty() : tensor<1x32x6x6xi32>
  %bi = linalg.broadcast ins(%b : tensor<32xi32>) outs(%e : tensor<1x32x6x6xi32>) dimensions = [0, 2, 3]
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x16x6x6xi8>, tensor<32x16x1x1xi8>) outs(%bi : tensor<1x32x6x6xi32>) -> tensor<1x32x6x6xi32>
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
  util.return %q : tensor<1x32x6x6xi8>
}

// Left alone: a batch of 2, a conv that does not read i8, a stride with a dilation.
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
// CHECK-LABEL: util.func public @strided_dilated
// CHECK:         linalg.conv_2d_nchw_fchw
util.func public @strided_dilated(%x: tensor<1x4x9x9xi8>, %w: tensor<16x4x3x3xi8>, %acc: tensor<1x16x3x3xi32>) -> tensor<1x16x3x3xi32> {
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<2> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w : tensor<1x4x9x9xi8>, tensor<16x4x3x3xi8>) outs(%acc : tensor<1x16x3x3xi32>) -> tensor<1x16x3x3xi32>
  util.return %y : tensor<1x16x3x3xi32>
}

// CHECK-LABEL: util.func public @depthwise
// CHECK:         %[[Q:.*]] = util.call @edgeq_dw_8x10x10_3x3_s2x2_8x8_t1l1_v128_rq39_0_255_m128(%arg0, %arg1, %arg2, %arg3)
// CHECK:         linalg.depthwise_conv_2d_nchw_chw
// CHECK:         util.return %[[Q]], %{{.*}} : tensor<1x8x4x4xi8>, tensor<1x8x4x4xi32>
util.func public @depthwise(%x: tensor<1x8x8x8xi8>, %w: tensor<8x3x3xi8>, %b: tensor<8xi32>, %m: tensor<8x1x1xi32>) -> (tensor<1x8x4x4xi8>, tensor<1x8x4x4xi32>) {
  %c-128 = arith.constant -128 : i8
  %xp = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %c-128 : i8
  } : tensor<1x8x8x8xi8> to tensor<1x8x10x10xi8>
  %e = tensor.empty() : tensor<1x8x4x4xi32>
  %bi = linalg.broadcast ins(%b : tensor<8xi32>) outs(%e : tensor<1x8x4x4xi32>) dimensions = [0, 2, 3]
  %y = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>} ins(%xp, %w : tensor<1x8x10x10xi8>, tensor<8x3x3xi8>) outs(%bi : tensor<1x8x4x4xi32>) -> tensor<1x8x4x4xi32>
  %qe = tensor.empty() : tensor<1x8x4x4xi8>
  %q = linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (c, 0, 0)>, affine_map<(n, c, h, w) -> (n, c, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%y, %m : tensor<1x8x4x4xi32>, tensor<8x1x1xi32>) outs(%qe : tensor<1x8x4x4xi8>) {
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
  } -> tensor<1x8x4x4xi8>
  %z = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>} ins(%xp, %w : tensor<1x8x10x10xi8>, tensor<8x3x3xi8>) outs(%bi : tensor<1x8x4x4xi32>) -> tensor<1x8x4x4xi32>
  util.return %q, %z : tensor<1x8x4x4xi8>, tensor<1x8x4x4xi32>
}

// A requantized depthwise conv whose two strides differ stays: the kernel's copies have one stride for both.
// CHECK-LABEL: util.func public @depthwise_unequal_strides
// CHECK-NOT:     util.call
// CHECK:         linalg.depthwise_conv_2d_nchw_chw
// CHECK-SAME:      strides = dense<[1, 2]>
util.func public @depthwise_unequal_strides(%x: tensor<1x8x8x8xi8>, %w: tensor<8x3x3xi8>, %b: tensor<8xi32>, %m: tensor<8x1x1xi32>) -> tensor<1x8x8x4xi8> {
  %c-128 = arith.constant -128 : i8
  %xp = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %c-128 : i8
  } : tensor<1x8x8x8xi8> to tensor<1x8x10x10xi8>
  %e = tensor.empty() : tensor<1x8x8x4xi32>
  %bi = linalg.broadcast ins(%b : tensor<8xi32>) outs(%e : tensor<1x8x8x4xi32>) dimensions = [0, 2, 3]
  %y = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : tensor<2xi64>, strides = dense<[1, 2]> : tensor<2xi64>} ins(%xp, %w : tensor<1x8x10x10xi8>, tensor<8x3x3xi8>) outs(%bi : tensor<1x8x8x4xi32>) -> tensor<1x8x8x4xi32>
  %qe = tensor.empty() : tensor<1x8x8x4xi8>
  %q = linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (c, 0, 0)>, affine_map<(n, c, h, w) -> (n, c, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%y, %m : tensor<1x8x8x4xi32>, tensor<8x1x1xi32>) outs(%qe : tensor<1x8x8x4xi8>) {
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
  } -> tensor<1x8x8x4xi8>
  util.return %q : tensor<1x8x8x4xi8>
}

// A conv with 3 channels runs unfolded: its 3 horizontal taps become 9 channels (12 lanes, as 3 took 4) of a 3x1
// conv with no horizontal stride, the pack reading the input at stride 2 (its scalars: 9 channels of 8 x 8,
// padding, row stride 2, column stride 2 read, 2 x 1 phase planes of 5 rows x 4 columns, 3 parts, unfold 3), the
// weights [o][q][i][t] -> [o][3 q + t][i][0].
// UNFOLD:         func.func @pack_conv_9x10x4_8x3x1_s2x1_d1x1_u3_8x8_t1l1_v128()
// UNFOLD:           call @edgeq_pack_u8_pooled(%{{.*}}, %{{.*}}, %c9_i32, %c8_i32, %c8_i32_0, %c1_i32, %c1_i32_1, %c-128_i32, %c2_i32, %c2_i32_2, %c2_i32_3, %c1_i32_4, %c5_i32, %c4_i32, %c3_i32, %c3_i32_5,
// UNFOLD-LABEL: util.func private @edgeq_conv_9x10x4_8x3x1_s2x1_d1x1_u3_8x8_t1l1_v128(
// UNFOLD-SAME:      %[[XS:.*]]: tensor<1x3x8x8xi8>, %[[W:.*]]: tensor<8x3x3x3xi8>,
// UNFOLD:         %[[WT:.*]] = linalg.transpose ins(%[[W]] : tensor<8x3x3x3xi8>) outs(%{{.*}} : tensor<8x3x3x3xi8>) permutation = [0, 1, 3, 2]
// UNFOLD:         %[[WU:.*]] = tensor.expand_shape %[[WT]] {{\[\[}}0], [1], [2], [3, 4]] output_shape [8, 3, 3, 3, 1]
// UNFOLD:         %[[WV:.*]] = tensor.collapse_shape %[[WU]] {{\[\[}}0], [1, 2], [3], [4]] : tensor<8x3x3x3x1xi8> into tensor<8x9x3x1xi8>
// UNFOLD:         tensor.pad %[[WV]] low[0, 0, 0, 0] high[0, 3, 0, 0]
// UNFOLD:         flow.dispatch @edgeq_kernels::@pack_conv_9x10x4_8x3x1_s2x1_d1x1_u3_8x8_t1l1_v128(%[[XS]]) : (tensor<1x3x8x8xi8>) -> tensor<3x2x1x{{[0-9]+}}x4x4xi8>
// CHECK-LABEL: util.func public @stem
// CHECK:         util.call @edgeq_conv_9x10x4_8x3x1_s2x1_d1x1_u3_8x8_t1l1_v128(%arg0, %arg1, %arg2)
util.func public @stem(%x: tensor<1x3x8x8xi8>, %w: tensor<8x3x3x3xi8>, %acc: tensor<1x8x4x4xi32>) -> tensor<1x8x4x4xi32> {
  %c-128 = arith.constant -128 : i8
  %xp = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %c-128 : i8
  } : tensor<1x3x8x8xi8> to tensor<1x3x10x10xi8>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%xp, %w : tensor<1x3x10x10xi8>, tensor<8x3x3x3xi8>) outs(%acc : tensor<1x8x4x4xi32>) -> tensor<1x8x4x4xi32>
  util.return %y : tensor<1x8x4x4xi32>
}
