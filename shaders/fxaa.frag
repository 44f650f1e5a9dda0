#version 330 core
// FXAA (after Timothy Lottes' FXAA 3.11 "quality" idea, reduced to the console variant):
// finds luma edges and blends along them. Input is the sRGB-encoded resolved image.
in vec2 v_uv;
uniform sampler2D u_image;
out vec4 f_color;

const float REDUCE_MIN = 1.0 / 128.0;
const float REDUCE_MUL = 1.0 / 8.0;
const float SPAN_MAX = 8.0;

float luma(vec3 c) { return dot(c, vec3(0.299, 0.587, 0.114)); }

void main() {
    // unfiltered fetches for the edge test (cheap on software rasterisers); most pixels stop there
    vec2 texel = 1.0 / vec2(textureSize(u_image, 0));
    ivec2 p = ivec2(gl_FragCoord.xy);
    ivec2 hi = textureSize(u_image, 0) - 1;
    vec3 nw = texelFetch(u_image, clamp(p + ivec2(-1, -1), ivec2(0), hi), 0).rgb;
    vec3 ne = texelFetch(u_image, clamp(p + ivec2(1, -1), ivec2(0), hi), 0).rgb;
    vec3 sw = texelFetch(u_image, clamp(p + ivec2(-1, 1), ivec2(0), hi), 0).rgb;
    vec3 se = texelFetch(u_image, clamp(p + ivec2(1, 1), ivec2(0), hi), 0).rgb;
    vec4 centre = texelFetch(u_image, p, 0);  // its alpha is kept (transparent backgrounds)
    vec3 m = centre.rgb;
    float l_nw = luma(nw), l_ne = luma(ne), l_sw = luma(sw), l_se = luma(se), l_m = luma(m);
    float l_min = min(l_m, min(min(l_nw, l_ne), min(l_sw, l_se)));
    float l_max = max(l_m, max(max(l_nw, l_ne), max(l_sw, l_se)));
    if (l_max - l_min < max(0.0312, l_max * 0.125)) {  // flat area: no edge to smooth
        f_color = centre;
        return;
    }
    vec2 dir = vec2(-((l_nw + l_ne) - (l_sw + l_se)), (l_nw + l_sw) - (l_ne + l_se));
    float reduce = max((l_nw + l_ne + l_sw + l_se) * 0.25 * REDUCE_MUL, REDUCE_MIN);
    float scale = 1.0 / (min(abs(dir.x), abs(dir.y)) + reduce);
    dir = clamp(dir * scale, -SPAN_MAX, SPAN_MAX) * texel;
    vec3 a = 0.5 * (texture(u_image, v_uv + dir * (1.0 / 3.0 - 0.5)).rgb
                  + texture(u_image, v_uv + dir * (2.0 / 3.0 - 0.5)).rgb);
    vec3 b = a * 0.5 + 0.25 * (texture(u_image, v_uv - dir * 0.5).rgb + texture(u_image, v_uv + dir * 0.5).rgb);
    float l_b = luma(b);
    f_color = vec4((l_b < l_min || l_b > l_max) ? a : b, centre.a);
}
