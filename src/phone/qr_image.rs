//! Reads the login code out of a picture, such as a screenshot of the widget.

use std::io::Cursor;

/// Largest picture accepted, in pixels per side.
const MAX_SIDE: u32 = 8192;

#[derive(Debug, thiserror::Error)]
pub enum QrImageError {
    #[error("not a readable PNG: {0}")]
    Png(String),
    #[error("the picture is larger than {MAX_SIDE} pixels on a side")]
    TooLarge,
    #[error("no QR code found in the picture")]
    NoCode,
}

/// Decodes the text of the first QR code found in a PNG.
pub fn decode_png(bytes: &[u8]) -> Result<String, QrImageError> {
    let (width, height, grey) = greyscale(bytes)?;
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| grey[y * width + x]);
    image
        .detect_grids()
        .into_iter()
        .find_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .ok_or(QrImageError::NoCode)
}

fn greyscale(bytes: &[u8]) -> Result<(usize, usize, Vec<u8>), QrImageError> {
    let png_err = |e: png::DecodingError| QrImageError::Png(e.to_string());
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(png_err)?;
    let info = reader.info();
    if info.width > MAX_SIDE || info.height > MAX_SIDE {
        return Err(QrImageError::TooLarge);
    }
    let size = reader.output_buffer_size().ok_or(QrImageError::TooLarge)?;
    let mut buffer = vec![0; size];
    let frame = reader.next_frame(&mut buffer).map_err(png_err)?;
    let channels = frame.color_type.samples();
    let (width, height) = (frame.width as usize, frame.height as usize);

    let grey = buffer[..frame.buffer_size()]
        .chunks(channels)
        .map(|px| match channels {
            1 | 2 => px[0],
            // Alpha is ignored; screenshots are opaque.
            _ => {
                ((u32::from(px[0]) * 299 + u32::from(px[1]) * 587 + u32::from(px[2]) * 114) / 1000)
                    as u8
            }
        })
        .collect::<Vec<_>>();
    if grey.len() < width * height {
        return Err(QrImageError::Png("truncated image data".into()));
    }
    Ok((width, height, grey))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_png() {
        assert!(matches!(decode_png(b"not a png"), Err(QrImageError::Png(_))));
    }

    #[test]
    fn a_blank_picture_has_no_code() {
        let mut bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut bytes, 64, 64);
            encoder.set_color(png::ColorType::Grayscale);
            let mut writer = encoder.write_header().expect("header");
            writer.write_image_data(&[255u8; 64 * 64]).expect("data");
        }
        assert!(matches!(decode_png(&bytes), Err(QrImageError::NoCode)));
    }
}
